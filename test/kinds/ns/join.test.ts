/**
 * --join-ns (src/kinds/ns/join.ts): the restored tree goes into existing
 * namespaces instead of new ones. A task in a named net namespace
 * (/run/netns/NAME, made with `ip netns add`, as runtimes and zdtm's
 * netns_lock_nftables do) is dumped with the network lock, killed, and
 * restored into that same namespace, whose lock is lifted; a task of ours
 * joins the uts and ipc namespaces of another process by its pid. Refused
 * with one line: types not handled, files that are not the namespace named.
 * And --empty-ns net: the namespace saved without its contents, restored
 * new, empty and locked for the caller's setup-namespaces step.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, rejectsOneLine, removeDir, tempDir, waitTreeGone } from '../../e2e/helpers.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

async function execd(pid: number, exe: string, ns?: { type: string; not: string }): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`).endsWith(exe) && (ns === undefined || readlinkSync(`/proc/${pid}/ns/${ns.type}`) !== ns.not)) return;
    } catch {
      // not exec'd yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`process ${pid} never became ${exe}`);
}

function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

test('--join-ns net:/run/netns/NAME: a tree dumped (locked, killed) comes back into the same namespace, its lock lifted', { timeout: 120_000 }, async () => {
  const name = `criu-ts-join-${process.pid}`;
  const file = `/run/netns/${name}`;
  execFileSync('ip', ['netns', 'add', name]);
  const inNs = (...args: string[]): string => execFileSync('nsenter', [`--net=${file}`, ...args], { encoding: 'utf8' });
  inNs('ip', 'link', 'set', 'lo', 'up');
  inNs('ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'lo');
  const child = spawn('nsenter', [`--net=${file}`, 'sleep', '60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('net-join');
  try {
    await execd(pid, '/sleep');
    const ino = statSync(file).ino;
    assert.equal(readlinkSync(`/proc/${pid}/ns/net`), `net:[${ino}]`);
    await dump({ pid, imagesDir: dir, progress: false, networkLock: 'nftables' });
    assert.deepEqual(await waitTreeGone(dir), []);
    const inv = readImage(join(dir, 'inventory.img')).entries[0] as unknown as { dump_criu_run_id: string };
    const lock = new RegExp(`table inet CRIU-${inv.dump_criu_run_id}`);
    assert.match(inNs('nft', 'list', 'tables'), lock, 'the namespace outlived the tree, locked');

    const r = await restore({ imagesDir: dir, progress: false, joinNs: [{ ns: 'net', file }] });
    assert.equal(r.pid, pid);
    assert.ok(isAlive(pid));
    assert.equal(readlinkSync(`/proc/${pid}/ns/net`), `net:[${ino}]`, 'restored into the joined namespace');
    assert.doesNotMatch(inNs('nft', 'list', 'tables'), lock, 'the lock is lifted');
    // What was saved went back into it (the address was there already: no harm done).
    assert.match(inNs('ip', '-o', 'addr', 'show', 'dev', 'lo'), /inet 10\.77\.0\.1\/24/);
  } finally {
    killQuiet(pid);
    await killAndWait(pid);
    spawnSync('ip', ['netns', 'delete', name]);
    removeDir(dir);
  }
});

test('--join-ns uts:PID ipc:PID: a task of our namespaces is restored into another process\'s', { timeout: 120_000 }, async () => {
  const ours = { uts: readlinkSync('/proc/self/ns/uts'), ipc: readlinkSync('/proc/self/ns/ipc') };
  const holder = spawn('unshare', ['--uts', '--ipc', 'sleep', '60'], { stdio: 'ignore', detached: true });
  const hpid = holder.pid as number;
  holder.unref();
  const child = spawn('sleep', ['60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('uts-join');
  try {
    await execd(hpid, '/sleep', { type: 'uts', not: ours.uts });
    await execd(pid, '/sleep');
    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    // A type given twice: the last one counts, as with CRIU.
    await restore({ imagesDir: dir, progress: false, joinNs: [{ ns: 'uts', file: '/proc/self/ns/uts' }, { ns: 'uts', file: String(hpid) }, { ns: 'ipc', file: `/proc/${hpid}/ns/ipc` }] });
    assert.ok(isAlive(pid));
    assert.equal(readlinkSync(`/proc/${pid}/ns/uts`), readlinkSync(`/proc/${hpid}/ns/uts`));
    assert.equal(readlinkSync(`/proc/${pid}/ns/ipc`), readlinkSync(`/proc/${hpid}/ns/ipc`));
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/uts`), ours.uts);
    assert.equal(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'the others are ours');
    killQuiet(pid);
    await killAndWait(pid);

    // Refusals, each one line, before any task exists.
    const refuse = async (joinNs: { ns: string; file: string; extra?: string }[], code: string, re: RegExp): Promise<void> => {
      await rejectsOneLine(restore({ imagesDir: dir, progress: false, joinNs }), code, re);
      assert.ok(!isAlive(pid));
    };
    await refuse([{ ns: 'pid', file: String(hpid) }], 'EUNSUPPORTED', /^--join-ns pid:\d+: joining a pid namespace is not supported \(net, uts, ipc\)$/);
    await refuse([{ ns: 'mnt', file: String(hpid) }], 'EUNSUPPORTED', /joining a mnt namespace is not supported/);
    await refuse([{ ns: 'bogus', file: '/x' }], 'EUSAGE', /^--join-ns bogus:\/x: invalid namespace type "bogus"/);
    await refuse([{ ns: 'net', file: '/nonexistent/ns' }], 'EUSAGE', /^--join-ns net:\/nonexistent\/ns: cannot access \/nonexistent\/ns: ENOENT$/);
    await refuse([{ ns: 'net', file: '999999999' }], 'EUSAGE', /^--join-ns net:999999999: no process 999999999/);
    await refuse([{ ns: 'net', file: `/proc/${hpid}/ns/uts` }], 'EUSAGE', /^--join-ns net:\/proc\/\d+\/ns\/uts: not a net namespace \(a uts namespace\)$/);
    await refuse([{ ns: 'ipc', file: '/etc/hostname' }], 'EUSAGE', /^--join-ns ipc:\/etc\/hostname: not an ipc namespace \(not a namespace file\)$/);
    await refuse([{ ns: 'net', file: String(hpid), extra: '0,0' }], 'EUSAGE', /only a user namespace takes extra options/);
  } finally {
    killQuiet(pid);
    killQuiet(hpid);
    await killAndWait(pid);
    await killAndWait(hpid);
    removeDir(dir);
  }
});

test('--empty-ns net: dumped without its contents, restored new and empty (lo down), locked until the tree runs; setup-namespaces fills it', { timeout: 120_000 }, async () => {
  const ourNet = readlinkSync('/proc/self/ns/net');
  const child = spawn('unshare', ['--net', 'sh', '-c', 'ip link set lo up && ip addr add 10.78.0.1/24 dev lo && exec sleep 60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('net-empty');
  try {
    await execd(pid, '/sleep', { type: 'net', not: ourNet });
    await dump({ pid, imagesDir: dir, progress: false, networkLock: 'nftables', emptyNetNs: true });
    assert.deepEqual(await waitTreeGone(dir), []);
    const names = readdirSync(dir);
    for (const prefix of ['netns-', 'netdev-', 'ifaddr-', 'route-', 'nftables-']) {
      assert.ok(!names.some((n) => n.startsWith(prefix)), `no ${prefix}* image, as CRIU writes none`);
    }
    // Without --empty-ns the restore has nothing to re-create the namespace from: one line.
    await assert.rejects(restore({ imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.match(e.message, /^netns-\d+\.img is missing: .* \(a dump made with --empty-ns net is restored with --empty-ns net\)$/);
      return true;
    });

    const inv = readImage(join(dir, 'inventory.img')).entries[0] as unknown as { dump_criu_run_id: string };
    const lock = new RegExp(`table inet CRIU-${inv.dump_criu_run_id}`);
    const seen: string[] = [];
    const r = await restore({
      imagesDir: dir, progress: false, emptyNetNs: true,
      notify: ({ point, rootPid }) => {
        if (point !== 'setup-namespaces') return;
        // What runc's hook does here: the namespace is new, empty and locked; it brings it up.
        const at = (...args: string[]): string => execFileSync('nsenter', ['-t', String(rootPid), '-n', ...args], { encoding: 'utf8' });
        seen.push(readlinkSync(`/proc/${rootPid}/ns/net`));
        assert.doesNotMatch(at('ip', '-o', 'link', 'show', 'lo'), /[<,]UP[,>]/, 'lo is down in the new namespace');
        assert.doesNotMatch(at('ip', '-o', 'addr'), /10\.78\.0\.1/);
        assert.match(at('nft', 'list', 'tables'), lock, 'locked while the tree is restored');
        at('ip', 'link', 'set', 'lo', 'up');
      },
    });
    assert.equal(r.pid, pid);
    assert.ok(isAlive(pid));
    assert.equal(seen.length, 1);
    assert.notEqual(seen[0], ourNet);
    assert.equal(readlinkSync(`/proc/${pid}/ns/net`), seen[0]);
    const at = (...args: string[]): string => execFileSync('nsenter', ['-t', String(pid), '-n', ...args], { encoding: 'utf8' });
    assert.doesNotMatch(at('nft', 'list', 'tables'), lock, 'unlocked once the tree runs');
    assert.match(at('ip', '-o', 'link', 'show', 'lo'), /[<,]UP[,>]/);
  } finally {
    killQuiet(pid);
    await killAndWait(pid);
    removeDir(dir);
  }
});
