/**
 * --external net[INODE]:KEY (kinds/ns/net.ts, api/externals.ts): the net
 * namespace of the tree is someone else's (runc's container in a netns
 * made by CNI, named by a path). The dump saves only the key (netns_entry
 * ext_key, as CRIU; real crit decodes it) and locks the namespace; the
 * restore puts the tree back into the namespace handed over as
 * --inherit-fd fd[N]:KEY and lifts the lock. Without the fd, or with one
 * that is not a net namespace: one line, no task left.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, rejectsOneLine, removeDir, tempDir, waitSleeping, waitTreeGone } from '../../lib/harness.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

async function inNetns(pid: number, ns: string): Promise<void> {
  if (await waitSleeping(pid, (p) => readlinkSync(`/proc/${p}/ns/net`) === ns, 3000)) return;
  throw new Error(`process ${pid} never ran sleep in ${ns}`);
}

const crit = ['/usr/bin/crit', '/usr/sbin/crit'].find((p) => existsSync(p));

test('--external net[INODE]:KEY: only the key is saved; the restore joins the namespace given by --inherit-fd, its lock lifted', { timeout: 120_000 }, async () => {
  const name = `criu-ts-ext-${process.pid}`;
  const file = `/run/netns/${name}`;
  execFileSync('ip', ['netns', 'add', name]);
  const inNs = (...args: string[]): string => execFileSync('nsenter', [`--net=${file}`, ...args], { encoding: 'utf8' });
  inNs('ip', 'link', 'set', 'lo', 'up');
  const ino = statSync(file).ino;
  const child = spawn('nsenter', [`--net=${file}`, 'sleep', '60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('net-external');
  const key = 'extRootNetNS';
  let nsFd = -1;
  try {
    await inNetns(pid, `net:[${ino}]`);
    await dump({ pid, imagesDir: dir, progress: false, networkLock: 'nftables', external: [`net[${ino}]:${key}`] });
    assert.deepEqual(await waitTreeGone(dir), []);
    const netnsImg = readImage(join(dir, 'netns-' + String(idOfNetns(dir)) + '.img'));
    assert.deepEqual(netnsImg.entries, [{ ext_key: key }], 'only the key is saved');
    assert.ok(!existsSync(join(dir, `netdev-${idOfNetns(dir)}.img`)), 'no device of it');
    if (crit !== undefined) {
      const shown = JSON.parse(execFileSync(crit, ['decode', '-i', join(dir, `netns-${idOfNetns(dir)}.img`)], { encoding: 'utf8' })) as { entries: { ext_key?: string }[] };
      assert.equal(shown.entries[0]?.ext_key, key, "CRIU's crit reads the key");
    }
    const inv = readImage(join(dir, 'inventory.img')).entries[0] as unknown as { dump_criu_run_id: string };
    const lock = new RegExp(`table inet CRIU-${inv.dump_criu_run_id}`);
    assert.match(inNs('nft', 'list', 'tables'), lock, 'the namespace outlived the tree, locked');

    // Refused, one line, nothing left: no fd for the key; an fd that is not a net namespace.
    const refuse = async (inheritFd: { fd: number; key: string }[] | undefined, code: string, re: RegExp): Promise<void> => {
      await rejectsOneLine(restore({ imagesDir: dir, progress: false, ...(inheritFd ? { inheritFd } : {}) }), code, re);
      assert.ok(!isAlive(pid));
    };
    await refuse(undefined, 'ERESTORE', /^the tree's net namespace was external at dump \(key extRootNetNS\): give it with --inherit-fd fd\[N\]:extRootNetNS$/);
    const uts = openSync('/proc/self/ns/uts', 'r');
    try {
      await refuse([{ fd: uts, key }], 'EUSAGE', /^--inherit-fd fd\[\d+\]:extRootNetNS: not a net namespace$/);
    } finally {
      closeSync(uts);
    }

    nsFd = openSync(file, 'r');
    const r = await restore({ imagesDir: dir, progress: false, inheritFd: [{ fd: nsFd, key }] });
    assert.equal(r.pid, pid);
    assert.ok(isAlive(pid));
    assert.equal(readlinkSync(`/proc/${pid}/ns/net`), `net:[${ino}]`, 'restored into the namespace handed over');
    assert.doesNotMatch(inNs('nft', 'list', 'tables'), lock, 'the lock is lifted');
  } finally {
    if (nsFd >= 0) closeSync(nsFd);
    await killAndWait(pid);
    spawnSync('ip', ['netns', 'delete', name]);
    removeDir(dir);
  }
});

test('--external net[..]: a malformed entry is one line naming it', async () => {
  for (const [e, re] of [
    ['net[abc]:k', /^--external net\[abc\]:k: expected net\[INODE\]:KEY/],
    ['net[123]:', /^--external net\[123\]:: expected net\[INODE\]:KEY/],
  ] as const) {
    await assert.rejects(dump({ pid: process.pid, imagesDir: '/nonexistent', progress: false, external: [e] }), (err: unknown) => {
      assert.ok(isCriuTsError(err), String(err));
      assert.equal(err.code, 'EUSAGE');
      assert.match(err.message, re);
      return true;
    });
  }
});

/** The tree's net ns id, from the root task's ids in its core image. */
function idOfNetns(dir: string): number {
  const pstree = readImage(join(dir, 'pstree.img')).entries[0] as unknown as { pid: number };
  const ids = readImage(join(dir, `ids-${pstree.pid}.img`)).entries[0] as unknown as { net_ns_id: number };
  return ids.net_ns_id;
}
