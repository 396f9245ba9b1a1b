/**
 * podman with criu-ts as `criu` on PATH (issue 14 point 2): `podman
 * --runtime runc` runs a busybox rootfs whose process counts into a file;
 * `podman container checkpoint` / `restore`, also `--export`/`--import` to
 * a tarball and `--keep`; after restore the count goes on from where it
 * stopped and podman reports the container running.
 *
 * Root here lacks CAP_SYS_RESOURCE, so the container gets rlimits it may
 * keep (`--ulimit nofile=1024:1024 --ulimit nproc=4096:4096`) and no
 * network of podman's making (`--network none`), on a plain directory as
 * its root (`--rootfs`). Skips: where podman cannot run a container here
 * (with podman's reason), and while criu-ts refuses what runc asks for
 * (the skip quotes criu-ts's one line). Any other failure is red.
 *
 * `--import` makes the container again from its image, which a `--rootfs`
 * container has none of: for that case the rootfs becomes a local image
 * (`podman import` of its tarball, no registry needed) and the count goes
 * to a directory given as a volume.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, sleep, tempDir, useE2eHarness, waitFor } from './helpers.js';
import {
  COUNTER_SCRIPT, CRIU_TS, allCounts, criuBin, criuFailureOf, criuOnPath, failureStory, firstLine, lastCount, makeRootfs, refusal, releasePipes, run,
  runDetaching, staticBusybox, which,
} from './containers.js';

useE2eHarness();

const podman = which('podman');
const runc = which('runc', ['/usr/sbin/runc', '/usr/bin/runc']);
const busybox = staticBusybox();
const missing = podman === undefined ? 'podman is not installed (apt-get install podman)'
  : runc === undefined ? 'runc is not installed (apt-get install runc)'
    : 'missing' in busybox ? busybox.missing : undefined;

const names: string[] = [];
const dirs: string[] = [];
const images: string[] = [];
let seq = 0;

/**
 * podman (cgroupfs manager, no systemd here) makes a `libpod_parent` cgroup
 * in every hierarchy and leaves it. Left behind, its cpuset makes zdtm's
 * cgroup02 fail for CRIU and criu-ts alike: the ones this file made go
 * again once its containers are gone.
 */
const CGROUP_ROOT = '/sys/fs/cgroup';
const podmanCgroups = (): string[] => {
  try {
    return readdirSync(CGROUP_ROOT).map((h) => join(CGROUP_ROOT, h, 'libpod_parent')).filter((d) => existsSync(d));
  } catch {
    return [];
  }
};
const cgroupsBefore = new Set(podmanCgroups());

function removeCgroupTree(dir: string): void {
  let subdirs: string[] = [];
  try {
    subdirs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch {
    return;
  }
  for (const d of subdirs) removeCgroupTree(d);
  try {
    rmdirSync(dir);
  } catch {
    // still in use (a container of someone else's): leave it
  }
}

after(() => {
  for (const n of names) run([podman as string, 'rm', '-f', '-t', '0', n]);
  for (const i of images) run([podman as string, 'rmi', '-f', i]);
  releasePipes();
  for (const d of dirs) removeDir(d);
  for (const d of podmanCgroups()) if (!cgroupsBefore.has(d)) removeCgroupTree(d);
});

interface Pod {
  name: string;
  dir: string;
  countFile: string;
  env: NodeJS.ProcessEnv;
}

function podmanCmd(p: Pod, ...args: string[]): string[] {
  return [podman as string, '--runtime', runc as string, ...args];
}

/** The container from `rootfs` as a local image (podman import of its tarball); the image's name, or podman's reason. */
function localImage(p: Pod, rootfs: string): { image: string } | string {
  const tar = join(p.dir, 'rootfs.tar');
  const t = run(['tar', '-C', rootfs, '-cf', tar, '.']);
  if (t.status !== 0) return `cannot tar the rootfs: ${firstLine(t.out)}`;
  const image = `localhost/criu-ts-busybox:${process.pid}-${seq}`;
  const r = run(podmanCmd(p, 'import', tar, image));
  if (r.status !== 0) return `podman cannot import an image here: ${firstLine(r.out)}`;
  images.push(image);
  return { image };
}

async function startPod(fromImage = false): Promise<Pod | string> {
  const dir = tempDir('podman');
  dirs.push(dir);
  const rootfs = join(dir, 'rootfs');
  makeRootfs(rootfs, (busybox as { path: string }).path);
  const p: Pod = { name: `criu-ts-${process.pid}-${(seq += 1)}`, dir, countFile: join(rootfs, 'data', 'count'), env: criuOnPath(join(dir, 'bin'), CRIU_TS) };
  names.push(p.name);
  let root = ['--rootfs', rootfs];
  if (fromImage) {
    const img = localImage(p, rootfs);
    if (typeof img === 'string') return img;
    const data = join(dir, 'data');
    mkdirSync(data);
    p.countFile = join(data, 'count');
    root = ['-v', `${data}:/data`, img.image];
  }
  const r = await runDetaching(podmanCmd(p, 'run', '-d', '--name', p.name, '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096',
    '--network', 'none', ...root, 'sh', '-c', COUNTER_SCRIPT), { env: p.env });
  if (r.status !== 0) return `podman cannot run a container here: ${firstLine(r.out)}`;
  assert.ok(await waitFor(() => lastCount(p.countFile) >= 5, 20_000), 'the container does not count');
  return p;
}

function status(p: Pod): string {
  const r = run(podmanCmd(p, 'inspect', '--format', '{{.State.Status}}', p.name));
  return r.out.trim();
}

async function checkpointAndRestore(
  t: { skip: (why: string) => void }, ckArgs: string[], rsArgs: (tarball: string) => string[], removeFirst: boolean, dumpWith?: string,
): Promise<void> {
  const p = await startPod(removeFirst);
  if (typeof p === 'string') {
    t.skip(p);
    return;
  }
  const tarball = join(p.dir, 'checkpoint.tar.gz');
  const ckEnv = dumpWith === undefined ? p.env : criuOnPath(join(p.dir, 'bin-dump'), dumpWith);
  const ck = run(podmanCmd(p, 'container', 'checkpoint', ...ckArgs.map((a) => a.replace('TARBALL', tarball)), p.name), { env: ckEnv });
  if (ck.status !== 0) {
    const why = refusal(`podman container checkpoint ${ckArgs.join(' ')}`.trim(), ck.out);
    assert.ok(why !== undefined, `podman checkpoint failed:\n${failureStory(ck.out)}`);
    assert.equal(status(p), 'running', 'a refused checkpoint must leave the container running');
    t.skip(why);
    return;
  }
  assert.equal(status(p), 'exited');
  const dumpedAt = lastCount(p.countFile);
  await sleep(300);
  assert.equal(lastCount(p.countFile), dumpedAt, 'something still counts after the checkpoint');
  if (removeFirst) assert.equal(run(podmanCmd(p, 'rm', p.name)).status, 0);
  const rs = await runDetaching(podmanCmd(p, 'container', 'restore', ...rsArgs(tarball), ...(removeFirst ? [] : [p.name])), { env: p.env });
  if (rs.status !== 0 && removeFirst && criuFailureOf(rs.out) === undefined) {
    // criu never ran: podman itself could not import the checkpoint (it wants an image for it; a --rootfs container has none).
    t.skip(`podman cannot import this checkpoint here: ${firstLine(rs.out)}`);
    return;
  }
  if (rs.status !== 0) {
    const why = refusal('podman container restore', rs.out);
    assert.ok(why !== undefined, `podman restore failed:\n${failureStory(rs.out)}`);
    t.skip(why);
    return;
  }
  assert.equal(status(p), 'running');
  assert.ok(await waitFor(() => lastCount(p.countFile) > dumpedAt + 5, 20_000), 'the restored container does not count on');
  const counts = allCounts(p.countFile);
  for (let k = 1; k < counts.length; k += 1) {
    assert.equal(counts[k], (counts[k - 1] as number) + 1, `the count jumps from ${counts[k - 1]} to ${counts[k]} (restarted?)`);
  }
}

const skipAll = missing ?? false;

test('podman container checkpoint / restore of a counting busybox container', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, [], () => [], false);
});

test('podman container checkpoint --keep / restore --keep', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, ['--keep'], () => ['--keep'], false);
});

test('podman container checkpoint --export, restore --import', { skip: skipAll }, async (t) => {
  await checkpointAndRestore(t, ['--export', 'TARBALL'], (tarball) => ['--import', tarball], true);
});

const criu = criuBin();

test('podman container restore with criu-ts of a checkpoint CRIU 4.2 made', {
  skip: skipAll !== false ? skipAll : criu === undefined ? 'set CRIU_BIN to a CRIU 4.2 binary' : false,
}, async (t) => {
  await checkpointAndRestore(t, [], () => [], false, criu);
});
