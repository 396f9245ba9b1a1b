/**
 * The network lock (--network-lock nftables): a table of ours holds every
 * packet of the dumped connections from the moment the dump reaches them
 * until the restored tree resumes; a failed dump or one that leaves the
 * tree running removes it; a dump killed midway leaves it, and the next
 * run removes it; check says what it can do.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { check, dump, restore } from '../../../src/api/index.js';
import { clearStaleLocks } from '../../../src/kinds/files/inet-socket/net-lock.js';
import { nftTableExists } from '../../../src/sys/index.js';
import { readImage } from '../../../src/images/index.js';
import { isAlive, repoRoot, startSubject } from '../../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitFor, waitGone } from '../../e2e/helpers.js';
import { setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const NFT = ['/usr/sbin/nft', '/sbin/nft'].find((p) => existsSync(p));
const skip = NFT ? false : 'no nft program (nftables)';

/** Whether the lock table of dump `runId` exists (other runs on this machine may hold tables of their own). */
const hasTable = (runId: string): boolean =>
  execFileSync(NFT as string, ['list', 'tables'], { encoding: 'utf8' }).split('\n').includes(`table inet CRIU-${runId}`);
/** The run id of the dump criu-ts process `pid` is making now (its marker). */
const runIdOfDumper = (pid: number): string | undefined => {
  const dir = '/run/criu-ts/net-lock';
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir).find((f) => readFileSync(join(dir, f), 'utf8').trim() === String(pid));
};
const runIdOf = (dir: string): string => readImage(join(dir, 'inventory.img')).entries[0]?.['dump_criu_run_id'] as string;

test('the lock holds the connections from dump to restore, then goes', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  const dir = tempDir('inet-lock');
  const s = await startSubject('tcp-conn', []);
  try {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, networkLock: 'nftables' });
    assert.ok(await waitGone(s.pid));
    const id = runIdOf(dir);
    assert.equal(readImage(join(dir, 'inventory.img')).entries[0]?.['network_lock_method'], 1);
    assert.ok(hasTable(id));
    const set4 = execFileSync(NFT as string, ['list', 'set', 'inet', `CRIU-${id}`, 'conns4'], { encoding: 'utf8' });
    // Two IPv4 connections (21-22 and the client of the closed listener is IPv6), each both ways.
    assert.equal((set4.match(/127\.0\.0\.1 \. \d+ \. 127\.0\.0\.1 \. \d+/g) ?? []).length, 2);
    await restore({ imagesDir: dir, progress: false });
    assert.ok(!hasTable(id));
    assert.equal((await s.terminateAndResult(30_000)).text, 'PASS');
  } finally {
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('a failed dump and a dump that leaves the tree running take the lock away again', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  const dir = tempDir('inet-lock-fail');
  const s = await startSubject('tcp-conn', []);
  let id: string | undefined;
  try {
    await assert.rejects(dump({
      pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, networkLock: 'nftables',
      notify: (e) => {
        if (e.point === 'post-dump') {
          id = runIdOfDumper(process.pid);
          assert.ok(id !== undefined && hasTable(id), 'locked while the dump runs');
          throw new Error('stop here');
        }
      },
    }), /stop here/);
    assert.ok(isAlive(s.pid));
    assert.ok(id !== undefined && !hasTable(id));
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, networkLock: 'nftables', leaveRunning: true });
    assert.ok(!hasTable(runIdOf(dir)));
    assert.equal((await s.terminateAndResult(30_000)).text, 'PASS');
  } finally {
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('criu-ts killed in the middle of a dump: its lock is removed by the next run', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  const dir = tempDir('inet-lock-kill');
  const script = join(dir, 'hold.sh');
  const at = join(dir, 'at-post-dump');
  writeFileSync(script, `#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0\ntouch ${at}\nexec sleep 60\n`, { mode: 0o755 });
  const s = await startSubject('tcp-conn', []);
  const img = join(dir, 'img');
  execFileSync('mkdir', ['-p', img]);
  const cli = spawn(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), 'dump', '-t', String(s.pid), '-D', img, '--tcp-established',
    '--network-lock', 'nftables', '--action-script', script], { detached: true, stdio: 'ignore' });
  try {
    assert.ok(await waitFor(() => existsSync(at), 30_000), 'the dump reached post-dump');
    const id = runIdOfDumper(cli.pid as number);
    assert.ok(id !== undefined && hasTable(id));
    // SIGKILL: nothing of criu-ts runs any more to clean up (the group takes the script's sleep too).
    process.kill(-(cli.pid as number), 'SIGKILL');
    await new Promise<void>((res) => cli.once('exit', () => res()));
    assert.ok(hasTable(id), 'the lock outlives a killed criu-ts');
    // The next run of criu-ts (here a dump of another tree) removes it first.
    const other = await startSubject('tcp-listen', []);
    try {
      await dump({ pid: other.pid, imagesDir: join(dir, 'other'), progress: false, leaveRunning: true });
      assert.ok(!hasTable(id));
    } finally {
      await killAndWait(other.pid);
      other.cleanup();
    }
  } finally {
    try { process.kill(-(cli.pid as number), 'SIGKILL'); } catch { /* gone */ }
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('a marker belongs to whoever holds its flock, not to the pid written in it (pid namespaces, pid reuse)', { timeout: 60_000, skip }, async () => {
  const dir = tempDir('inet-lock-owner');
  const markers = '/run/criu-ts/net-lock';
  const live = randomUUID();
  const dead = randomUUID();
  // A dump in a pid namespace of its own: it writes its pid as it sees it, a pid nobody has here.
  let nsPid = 30_000;
  while (existsSync(`/proc/${nsPid + 1}`)) nsPid -= 7;
  const ready = join(dir, 'ready');
  const mod = join(repoRoot(), 'dist', 'src', 'kinds', 'files', 'inet-socket', 'net-lock-marker.js');
  const js = `const m = await import(${JSON.stringify(mod)}); m.claimMarker(${JSON.stringify(live)});`
    + ` (await import('node:fs')).writeFileSync(${JSON.stringify(ready)}, String(process.pid)); setInterval(() => {}, 1000);`;
  // sh forks node (a command after it keeps sh from exec'ing it): node is the namespace's pid nsPid + 1.
  const holder = spawn('unshare', ['--pid', '--fork', 'sh', '-c',
    `echo ${nsPid} > /proc/sys/kernel/ns_last_pid; "$0" --input-type=module -e "$1"; true`, process.execPath, js], { stdio: 'ignore', detached: true });
  try {
    assert.ok(await waitFor(() => existsSync(ready), 30_000), 'the holder made its marker');
    const recorded = readFileSync(join(markers, live), 'utf8').split('\n')[0];
    assert.equal(recorded, String(nsPid + 1));
    assert.ok(!existsSync(`/proc/${recorded}`), 'the pid in the marker means nothing here');
    execFileSync(NFT as string, ['add', 'table', 'inet', `CRIU-${live}`]);
    // A marker nobody holds, naming a pid that lives here (ours): its dump is gone all the same.
    mkdirSync(markers, { recursive: true, mode: 0o700 });
    writeFileSync(join(markers, dead), `${process.pid}\n`, { mode: 0o600 });
    execFileSync(NFT as string, ['add', 'table', 'inet', `CRIU-${dead}`]);
    clearStaleLocks();
    assert.ok(hasTable(live) && existsSync(join(markers, live)), 'a running dump keeps its lock');
    assert.ok(!hasTable(dead) && !existsSync(join(markers, dead)), 'a dead dump\'s lock goes, whatever pid it names');
    process.kill(-(holder.pid as number), 'SIGKILL');
    await new Promise<void>((res) => holder.once('exit', () => res()));
    // unshare is gone; node, killed with its namespace, may take a moment more to close its fds.
    assert.ok(await waitFor(() => {
      clearStaleLocks();
      return !hasTable(live) && !existsSync(join(markers, live));
    }, 10_000), 'its lock goes once its holder is dead');
  } finally {
    try { process.kill(-(holder.pid as number), 'SIGKILL'); } catch { /* gone */ }
    for (const id of [live, dead]) {
      try { execFileSync(NFT as string, ['delete', 'table', 'inet', `CRIU-${id}`], { stdio: 'ignore' }); } catch { /* gone */ }
      rmSync(join(markers, id), { force: true });
    }
    removeDir(dir);
  }
});

test('a restore asks the kernel for the lock table: none made, nothing run; one there (CRIU makes it for every dump), removed', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  const dir = tempDir('inet-lock-none');
  const s = await startSubject('counter-loop', []);
  let id: string | undefined;
  try {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, networkLock: 'nftables' });
    assert.ok(await waitGone(s.pid));
    id = runIdOf(dir);
    // No connection: no table, and the kernel says so.
    assert.ok(!hasTable(id));
    assert.equal(nftTableExists('inet', `CRIU-${id}`), false);
    // The table CRIU's dump makes whatever the tree holds (made here by hand): the restore takes it away.
    execFileSync(NFT as string, ['add', 'table', 'inet', `CRIU-${id}`]);
    assert.equal(nftTableExists('inet', `CRIU-${id}`), true);
    assert.equal(nftTableExists('ip', `CRIU-${id}`), false);
    await restore({ imagesDir: dir, progress: false });
    assert.ok(!hasTable(id));
    assert.equal((await s.terminateAndResult(30_000)).text, 'PASS');
  } finally {
    if (id !== undefined && hasTable(id)) execFileSync(NFT as string, ['delete', 'table', 'inet', `CRIU-${id}`]);
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('check answers the network-lock features from what works here', { skip }, async () => {
  const r = await check({ feature: 'network_lock_nftables' });
  assert.equal(r.ok, true);
  assert.equal((await check({ feature: 'nftables' })).ok, true);
});
