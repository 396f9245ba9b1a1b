/**
 * Namespaces criu-ts cannot checkpoint yet are refused, never restored into
 * ours: a task in its own mount namespace, or one whose children would start
 * in a new pid namespace, makes the dump fail with one line naming the task
 * and the namespace, and the task runs on untouched; images whose tasks had
 * namespaces of their own (ids differ from inventory root_ids) are refused
 * at restore before anything is created.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore, isCriuTsError } from '../../src/api/index.js';
import { readImage, writeImage } from '../../src/images/index.js';
import { closeInheritedFds, becomeSubreaper, tempDir, removeDir, waitGone } from '../e2e/helpers.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const CLI = new URL('../../../bin/criu-ts', import.meta.url).pathname;

function statusField(pid: number, name: string): string | undefined {
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m?.[1];
}

function nsDiffers(pid: number, ns: string, ours: string): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/${ns}`) !== ours;
  } catch {
    // pid_for_children of a new pid namespace nobody has entered yet: no link
    return ns.endsWith('_for_children');
  }
}

/** Start `unshare ARGS sleep 60` (unshare execs sleep, same pid) once its namespace is in place. */
async function startUnshared(args: string[], ns: string): Promise<number> {
  const child = spawn('unshare', [...args, 'sleep', '60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const ours = readlinkSync(`/proc/self/ns/${ns}`);
  for (let i = 0; i < 200; i++) {
    try {
      const exe = readlinkSync(`/proc/${pid}/exe`);
      // Asleep in nanosleep, so its state after the refusal can be compared.
      if (exe.endsWith('/sleep') && nsDiffers(pid, ns, ours) && /^S/.test(statusField(pid, 'State') ?? '')) return pid;
    } catch {
      // not exec'd yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`unshare ${args.join(' ')} did not start`);
}

function stop(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

const CASES = [
  // A copy of our mount tree: its other filesystems (/dev, /boot...) are outside its root, not dumped without --external.
  { args: ['--mount'], ns: 'mnt', says: /task \d+ \(sleep\): mount \d+ at \S+ \(.*\): / },
  { args: ['--pid'], ns: 'pid_for_children', says: /task \d+ \(sleep\) would start its children in another pid namespace/ },
];

for (const c of CASES) {
  test(`a task with ${c.args.join(' ')} is refused at dump and runs on untouched`, { timeout: 30_000 }, async () => {
    const pid = await startUnshared(c.args, c.ns);
    const dir = tempDir('ns-refuse');
    try {
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
      await assert.rejects(dump({ pid, imagesDir: dir }), (e: unknown) => {
        assert.ok(isCriuTsError(e) && e.code === 'EUNSUPPORTED', `EUNSUPPORTED expected, got ${String(e)}`);
        assert.match(e.message, c.says);
        assert.ok(e.message.includes(String(pid)));
        return true;
      });
      assert.equal(statusField(pid, 'TracerPid'), '0');
      assert.equal(statusField(pid, 'SigBlk'), '0000000000000000');
      // A refusal after the tree was seized (the mount kind's) leaves it running back into its sleep.
      for (let i = 0; i < 100 && !/^S/.test(statusField(pid, 'State') ?? ''); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(statusField(pid, 'State') ?? '', /^S/);
      assert.equal(readFileSync(`/proc/${pid}/maps`, 'utf8'), maps);

      // The CLI says it in one line, exit status non-zero, no stack trace.
      const r = spawnSync(CLI, ['dump', '-t', String(pid), '-D', dir], { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0] ?? '', c.says);
      assert.equal(statusField(pid, 'TracerPid'), '0');
    } finally {
      stop(pid);
      removeDir(dir);
    }
  });
}

test('root_ids hold the dumper\'s namespaces; images of a task in its own namespace are refused at restore', { timeout: 30_000 }, async () => {
  const child = spawn('sleep', ['60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('ns-ids');
  try {
    await new Promise((r) => setTimeout(r, 50));
    await dump({ pid, imagesDir: dir, leaveRunning: true });
    const inv = readImage(join(dir, 'inventory.img')).entries[0] as Record<string, unknown>;
    const rootIds = inv['root_ids'] as Record<string, number>;
    const idsPath = join(dir, `ids-${pid}.img`);
    const ids = readImage(idsPath).entries[0] as Record<string, number>;
    for (const f of ['pid_ns_id', 'net_ns_id', 'ipc_ns_id', 'uts_ns_id', 'mnt_ns_id', 'user_ns_id', 'cgroup_ns_id']) {
      assert.equal(ids[f], rootIds[f], `${f} of a task in our namespaces equals root_ids`);
    }
    // CRIU numbers the dumper first: its own mm is kid 1, the task's another.
    assert.equal(rootIds['vm_id'], 1);
    assert.notEqual(ids['vm_id'], rootIds['vm_id']);

    writeImage(idsPath, 'IDS', [{ ...ids, mnt_ns_id: 99 }]);
    // The pid must be free for the restore to reach the namespaces.
    stop(pid);
    assert.ok(await waitGone(pid));
    // The image is edited on purpose: past the checksums, to the namespace check itself.
    await assert.rejects(restore({ imagesDir: dir, skipChecksums: true }), (e: unknown) => {
      // The mount namespace is re-created from its mountpoints image, which this dump has not.
      assert.ok(isCriuTsError(e) && e.code === 'EIMAGE', String(e));
      assert.match(e.message, /^mountpoints-99\.img is missing or empty: the tree's mount namespace cannot be re-created$/);
      return true;
    });
  } finally {
    stop(pid);
    removeDir(dir);
  }
});
