/**
 * runc with criu-ts as its criu (issue 14 point 1): a busybox container
 * whose process counts into a file in its rootfs is checkpointed and
 * restored by Debian's runc (`runc --criu bin/criu-ts`), in the ways runc
 * offers: plain, --leave-running, --pre-dump then --parent-path, --tcp-established,
 * --manage-cgroups-mode, --empty-ns network, a network namespace given by
 * path (runc sends it as `external` and gives it back with `inherit_fd`),
 * lazy migration (`checkpoint --lazy-pages --page-server --status-fd`, the
 * pages served from the frozen container to `criu-ts lazy-pages
 * --page-server` for a `restore --lazy-pages`), and a restore of CRIU
 * 4.2's checkpoint (with CRIU_BIN). After restore
 * the count goes on from where it stopped (never from 1 again) and runc
 * reports the container running.
 *
 * Skips: where runc cannot start a container at all (with runc's reason),
 * and while criu-ts refuses what runc asks for (EOPNOTSUPP; the skip
 * quotes criu-ts's one line naming the missing piece). Any other failure
 * is red.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { pipe2 } from '../../src/sys/index.js';
import { join } from 'node:path';
import { readImage } from '../../src/images/index.js';
import { killAndWait, removeDir, sleep, tempDir, useE2eHarness, waitFor, waitGone } from './helpers.js';
import {
  COUNTER_SCRIPT, CRIU_TS, allCounts, criuBin, failureStory, firstLine, hasIpNetns, lastCount, makeRootfs, refusal, releasePipes, run, runDetaching, staticBusybox, which,
} from './containers.js';

useE2eHarness();

const runc = which('runc', ['/usr/sbin/runc', '/usr/bin/runc']);
const busybox = staticBusybox();
const missing = runc === undefined ? 'runc is not installed (apt-get install runc)' : 'missing' in busybox ? busybox.missing : undefined;

interface Container {
  id: string;
  dir: string;
  bundle: string;
  state: string;
  countFile: string;
  pidFile: string;
}

const made: Container[] = [];
const netnses: string[] = [];
let seq = 0;

function runcArgs(c: Container, criu: string, ...args: string[]): string[] {
  return [runc as string, '--root', c.state, '--criu', criu, ...args];
}

/** A bundle from `runc spec`: no terminal, a writable rootfs, the counter as its process. */
function makeContainer(edit?: (config: Record<string, unknown>) => void): Container {
  const dir = tempDir('runc');
  const c: Container = {
    id: `criu-ts-${process.pid}-${(seq += 1)}`, dir, bundle: join(dir, 'bundle'), state: join(dir, 'state'),
    countFile: join(dir, 'bundle', 'rootfs', 'data', 'count'), pidFile: join(dir, 'init.pid'),
  };
  made.push(c);
  makeRootfs(join(c.bundle, 'rootfs'), (busybox as { path: string }).path);
  const spec = run([runc as string, 'spec', '--bundle', c.bundle]);
  assert.equal(spec.status, 0, `runc spec: ${spec.out}`);
  const configPath = join(c.bundle, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as {
    process: { terminal: boolean; args: string[] }; root: { readonly: boolean };
  };
  config.process.terminal = false;
  config.process.args = ['sh', '-c', COUNTER_SCRIPT];
  config.root.readonly = false;
  edit?.(config as unknown as Record<string, unknown>);
  writeFileSync(configPath, JSON.stringify(config, null, 1));
  return c;
}

/** A task's pid in its innermost pid namespace (NSpid's last field): a container's init is 1 there. */
function nsPidOf(pid: number): number {
  const m = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]?.trim().split(/\s+/).pop());
}

function initPid(c: Container): number {
  return Number(readFileSync(c.pidFile, 'utf8'));
}

function runcStatus(c: Container): string | undefined {
  const r = run([runc as string, '--root', c.state, 'state', c.id]);
  if (r.status !== 0) return undefined;
  return (JSON.parse(r.out) as { status: string }).status;
}

/** Start it; the reason runc gives when it cannot run a container here. */
async function start(c: Container): Promise<string | undefined> {
  const r = await runDetaching([runc as string, '--root', c.state, 'run', '-d', '--pid-file', c.pidFile, '--bundle', c.bundle, c.id]);
  if (r.status !== 0) return `runc cannot start a container here: ${firstLine(r.out)}`;
  assert.ok(await waitFor(() => lastCount(c.countFile) >= 5, 20_000), 'the container does not count');
  return undefined;
}

/**
 * A container of ours, started and counting, with its init's pid (ours and
 * in its namespace) and the image and work dirs of its checkpoint;
 * undefined when runc cannot start one here (the test is skipped, saying why).
 */
async function startedContainer(t: { skip: (why: string) => void }, edit?: (config: Record<string, unknown>) => void): Promise<{ c: Container; pid: number; nsPid: number; img: string; work: string } | undefined> {
  const c = makeContainer(edit);
  const cannot = await start(c);
  if (cannot !== undefined) {
    t.skip(cannot);
    return undefined;
  }
  const pid = initPid(c);
  return { c, pid, nsPid: nsPidOf(pid), img: join(c.dir, 'img'), work: join(c.dir, 'work') };
}

async function destroy(c: Container): Promise<void> {
  let pid: number | undefined;
  try {
    pid = initPid(c);
  } catch {
    pid = undefined;
  }
  run([runc as string, '--root', c.state, 'kill', c.id, 'KILL']);
  if (pid !== undefined) await killAndWait(pid);
  run([runc as string, '--root', c.state, 'delete', '-f', c.id]);
}

// A restore into a new pid namespace must move the container's tasks into their cgroups by their
// pids here: the image's pid 1 written to cgroup.procs from outside would move this machine's init.
// Compared hierarchy by hierarchy: one mounted meanwhile by something else
// on the machine (a v1 controller's first mount adds a line) is not a move.
const initCgroupsNow = (): Map<string, string> => new Map(readFileSync('/proc/1/cgroup', 'utf8').trim().split('\n').map((l) => {
  const i = l.lastIndexOf(':');
  return [l.slice(0, i), l.slice(i + 1)] as const;
}));
const initCgroups = initCgroupsNow();

after(async () => {
  // Every container first: a lazy restore's state and pid file live in its source's dir.
  for (const c of made) await destroy(c);
  for (const c of made) removeDir(c.dir);
  for (const ns of netnses) run(['ip', 'netns', 'delete', ns]);
  releasePipes();
  const now = initCgroupsNow();
  for (const [h, path] of initCgroups) assert.equal(now.get(h), path, `the host's init was moved into another cgroup of ${h}`);
});

/** The numbers counted are 1, 2, 3, ... with no gap and no restart. */
function assertCountsOn(c: Container, from: number): void {
  const counts = allCounts(c.countFile);
  const i = counts.indexOf(from);
  assert.ok(i >= 0, `the count never reached ${from}`);
  const tail = counts.slice(i);
  for (let k = 1; k < tail.length; k += 1) {
    assert.equal(tail[k], (tail[k - 1] as number) + 1, `the count jumps from ${tail[k - 1]} to ${tail[k]} (restarted?)`);
  }
}

interface Variant {
  checkpoint?: string[];
  restore?: string[];
  edit?: (config: Record<string, unknown>) => void;
  leaveRunning?: boolean;
  /** the criu that checkpoints (default criu-ts) */
  dumpWith?: string;
  /** a `runc checkpoint --pre-dump` first (the container goes on), then the checkpoint with `--parent-path` to it */
  preDump?: boolean;
}

async function checkpointAndRestore(t: { skip: (why: string) => void }, v: Variant): Promise<void> {
  const started = await startedContainer(t, v.edit);
  if (started === undefined) return;
  const { c, pid, nsPid, img, work } = started;
  const parent: string[] = [];
  if (v.preDump === true) {
    const pre = run(runcArgs(c, v.dumpWith ?? CRIU_TS, 'checkpoint', '--pre-dump', '--image-path', join(c.dir, 'pre'), '--work-path', work, c.id));
    assert.equal(pre.status, 0, `runc checkpoint --pre-dump failed:\n${failureStory(pre.out)}`);
    assert.equal(runcStatus(c), 'running', 'the container goes on after a pre-dump');
    const now = lastCount(c.countFile);
    assert.ok(await waitFor(() => lastCount(c.countFile) > now + 2, 10_000), 'the container stopped counting after the pre-dump');
    // runc takes it relative to the image path, as CRIU's --prev-images-dir
    parent.push('--parent-path', '../pre');
  }
  const ck = run(runcArgs(c, v.dumpWith ?? CRIU_TS, 'checkpoint', '--image-path', img, '--work-path', work, ...parent, ...(v.checkpoint ?? []), c.id));
  if (ck.status !== 0) {
    const why = refusal(`runc checkpoint ${(v.checkpoint ?? []).join(' ')}`.trim(), ck.out);
    assert.ok(why !== undefined, `runc checkpoint failed:\n${failureStory(ck.out)}`);
    assert.equal(runcStatus(c), 'running', 'a refused checkpoint must leave the container running');
    t.skip(why);
    return;
  }
  if (v.preDump === true) {
    // The checkpoint is incremental: pages the pre-dump holds are not written again (stats-dump is in the work dir, as CRIU writes it).
    const st = readImage(join(work, 'stats-dump')).entries[0] as { dump?: { pages_skipped_parent?: bigint } };
    assert.ok(Number(st.dump?.pages_skipped_parent ?? 0n) > 0, 'the checkpoint found no page in the pre-dump');
  }
  let dumpedAt: number;
  if (v.leaveRunning === true) {
    const now = lastCount(c.countFile);
    assert.ok(await waitFor(() => lastCount(c.countFile) > now + 3, 10_000), 'the container stopped counting after --leave-running');
    assert.equal(runcStatus(c), 'running');
    dumpedAt = lastCount(c.countFile);
    await destroy(c); // make room for the restore under the same id
  } else {
    assert.ok(await waitGone(pid, 15_000), 'the checkpointed container is still there');
    dumpedAt = lastCount(c.countFile);
    await sleep(300);
    assert.equal(lastCount(c.countFile), dumpedAt, 'something still counts after the checkpoint');
  }
  rmSync(c.pidFile, { force: true });
  const rs = await runDetaching(runcArgs(c, CRIU_TS, 'restore', '-d', '--pid-file', c.pidFile, '--image-path', img, '--work-path', work,
    '--bundle', c.bundle, ...(v.restore ?? []), c.id));
  if (rs.status !== 0) {
    const why = refusal(`runc restore ${(v.restore ?? []).join(' ')}`.trim(), rs.out);
    assert.ok(why !== undefined, `runc restore failed:\n${failureStory(rs.out)}`);
    t.skip(why);
    return;
  }
  // The init has its pid in the container's pid namespace again; its number outside is the kernel's choice, as with CRIU.
  assert.equal(nsPidOf(initPid(c)), nsPid, 'the restored init has another pid in its namespace');
  assert.equal(runcStatus(c), 'running');
  const back = lastCount(c.countFile);
  assert.ok(await waitFor(() => lastCount(c.countFile) > back + 5, 20_000), 'the restored container does not count on');
  if (v.leaveRunning !== true) assertCountsOn(c, 1);
  else assert.ok(allCounts(c.countFile).slice(-5).every((n) => n > 1), 'the restored container counts from 1 again');
  assert.ok(lastCount(c.countFile) > dumpedAt || v.leaveRunning === true);
}

const skipAll = missing ?? false;

test('runc checkpoint / restore of a counting busybox container', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, {});
});

test('runc checkpoint --leave-running, then restore', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, { checkpoint: ['--leave-running'], leaveRunning: true });
});

test('runc checkpoint / restore --tcp-established', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, { checkpoint: ['--tcp-established'], restore: ['--tcp-established'] });
});

test('runc checkpoint / restore --manage-cgroups-mode soft and full', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, { checkpoint: ['--manage-cgroups-mode', 'full'], restore: ['--manage-cgroups-mode', 'soft'] });
});

test('runc checkpoint --pre-dump, then checkpoint --parent-path and restore', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, { preDump: true });
});

test('runc checkpoint / restore --empty-ns network', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, { checkpoint: ['--empty-ns', 'network'], restore: ['--empty-ns', 'network'] });
});

test('runc with a network namespace given by path (external net ns, inherit_fd on restore)', {
  skip: skipAll !== false ? skipAll : hasIpNetns() ? false : 'ip netns is not available',
}, async (t) => {
  const ns = `criu-ts-runc-${process.pid}`;
  const add = run(['ip', 'netns', 'add', ns]);
  if (add.status !== 0) {
    t.skip(`cannot make a network namespace: ${firstLine(add.out)}`);
    return;
  }
  netnses.push(ns);
  await checkpointAndRestore(t, {
    edit: (config) => {
      const linux = config['linux'] as { namespaces: { type: string; path?: string }[] };
      const net = linux.namespaces.find((n) => n.type === 'network');
      if (net) net.path = `/var/run/netns/${ns}`;
    },
  });
});

/** A port nothing listens on now (the page server of the checkpoint takes it a moment later). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const a = srv.address();
  await new Promise<void>((res) => srv.close(() => res()));
  return typeof a === 'object' && a !== null ? a.port : 0;
}

/**
 * runc's lazy migration: `checkpoint --lazy-pages --page-server A:P
 * --status-fd FD` returns only once the restore side has every page (the
 * container stays frozen meanwhile, with its memory); FD gets a zero byte
 * (runc writes it on criu-ts's status-ready notification) once the images
 * are complete and the page server listens. Then, as on the destination
 * host: `criu-ts lazy-pages --page-server` and `runc restore --lazy-pages`,
 * here under another container id and state root (the original is still
 * there, frozen, until the checkpoint ends).
 */
test('runc checkpoint --lazy-pages --page-server --status-fd, then lazy-pages --page-server and runc restore --lazy-pages', { skip: skipAll, timeout: 180_000 }, async (t) => {
  const started = await startedContainer(t);
  if (started === undefined) return;
  const { c, pid, nsPid, img, work } = started;
  const port = await freePort();
  // runc checks that the status fd is open for writing: a real pipe, not a socketpair.
  const [statusR, statusW] = pipe2(0o4000);
  const ckOut = join(c.dir, 'checkpoint.out');
  const outFd = openSync(ckOut, 'w');
  const ck = spawn(runc as string, [...runcArgs(c, CRIU_TS, 'checkpoint', '--lazy-pages', '--page-server', `127.0.0.1:${port}`, '--status-fd', '3',
    '--image-path', img, '--work-path', work, c.id)].slice(1), { stdio: ['ignore', outFd, outFd, statusW] });
  closeSync(outFd);
  closeSync(statusW);
  const ckExit = new Promise<number | null>((res) => ck.on('exit', (code) => res(code)));
  let status: number | undefined;
  const byte = Buffer.alloc(1);
  const ready = await waitFor(() => {
    try {
      if (readSync(statusR, byte) === 1) status = byte[0];
    } catch {
      // EAGAIN: not yet
    }
    return status !== undefined || ck.exitCode !== null;
  }, 60_000);
  closeSync(statusR);
  if (status !== 0) {
    await ckExit;
    const out = readFileSync(ckOut, 'utf8');
    const why = refusal('runc checkpoint --lazy-pages', out);
    assert.ok(why !== undefined, `runc checkpoint --lazy-pages: no status byte (${String(ready)}):\n${failureStory(out)}`);
    t.skip(why);
    return;
  }
  // The images are complete; the container waits, frozen, with its memory.
  const dumpedAt = lastCount(c.countFile);
  await sleep(300);
  assert.equal(lastCount(c.countFile), dumpedAt, 'the container counts on while its pages are served');
  assert.ok(existsSync(`/proc/${pid}`), 'the checkpointed container is still there, frozen');
  // The destination: another container id and state root, the pages from the checkpoint's page server.
  const r: Container = { ...c, id: `${c.id}-lazy`, state: join(c.dir, 'state-lazy'), pidFile: join(c.dir, 'lazy.pid') };
  made.push(r);
  const lp = spawn(process.execPath, [CRIU_TS, 'lazy-pages', '-D', img, '-W', work, '--page-server', '--address', '127.0.0.1', '--port', String(port), '-v4', '-o', join(work, 'lazy-pages.log')],
    { stdio: 'ignore' });
  const lpExit = new Promise<number | null>((res) => lp.on('exit', (code) => res(code)));
  const rs = await runDetaching(runcArgs(r, CRIU_TS, 'restore', '-d', '--lazy-pages', '--pid-file', r.pidFile, '--image-path', img, '--work-path', work,
    '--bundle', r.bundle, r.id));
  assert.equal(rs.status, 0, `runc restore --lazy-pages failed:\n${failureStory(rs.out)}`);
  assert.equal(await lpExit, 0, `lazy-pages: ${readFileSync(join(work, 'lazy-pages.log'), 'utf8').slice(-1500)}`);
  // Every page sent: the checkpoint ends, runc removes the original.
  assert.equal(await ckExit, 0, `runc checkpoint --lazy-pages:\n${failureStory(readFileSync(ckOut, 'utf8'))}`);
  assert.ok(await waitGone(pid, 15_000), 'the original container is gone once its pages are served');
  assert.equal(nsPidOf(initPid(r)), nsPid, 'the restored init has another pid in its namespace');
  assert.equal(runcStatus(r), 'running');
  assert.ok(await waitFor(() => lastCount(r.countFile) > dumpedAt + 5, 20_000), 'the restored container does not count on');
  assertCountsOn(r, 1);
});

const criu = criuBin();

test('runc restore with criu-ts of a checkpoint CRIU 4.2 made', {
  skip: skipAll !== false ? skipAll : criu === undefined ? 'set CRIU_BIN to a CRIU 4.2 binary' : false,
}, async (t) => {
  assert.ok(existsSync(criu as string));
  await checkpointAndRestore(t, { dumpWith: criu as string });
});
