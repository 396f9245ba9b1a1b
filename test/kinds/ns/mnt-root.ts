/**
 * The frame of the mount namespace tests (mnt.test.ts, mnt-ext.test.ts):
 * the mnt-ns subject in a private root of its own, dumped and its images
 * read back by mount.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, type DumpOptions } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { startSubject, type Subject } from '../../lib/subjects.js';
import { waitGone } from '../../lib/harness.js';
import { SubjectRun } from '../../lib/subject-run.js';

/** The mountpoints every mode of the subject uses, and the harness's work dir (w). */
const MOUNTPOINTS = ['proc', 't', 't2', 't3', 'dev', 'ro', 'mq', 'w', 'data/sub', 'n', 'n2', 'o1', 'o2', 'e1', 'e2', 'e3', 'e4'];

/** A private root for the subject at `root`: its mountpoints, a directory to bind, the harness's work dir at ROOT/w. */
export function makeRoot(root: string): string {
  for (const d of MOUNTPOINTS) mkdirSync(join(root, d), { recursive: true });
  return root;
}

/** The mnt-ns subject, started in `root` (made by makeRoot). */
export function startInRoot(root: string, args: readonly string[] = []): Promise<Subject> {
  return startSubject('mnt-ns', ['--root', root, ...args], { static: true, launcher: true, workDir: join(root, 'w') });
}

/** One test's frame: the subject's root, an images dir, and the start of the subject in that root. */
export interface InRoot {
  root: string;
  dir: string;
  run: SubjectRun;
  start(args?: readonly string[]): Promise<Subject>;
}

/**
 * Runs `body` with a fresh private root (made one level down in a dir of
 * its own with `nested`, for a test that changes who may walk to it) and
 * images dir; whatever happens, the subject or its restored tree is killed
 * and both dirs go.
 */
export async function inRoot(name: string, body: (r: InRoot) => Promise<void>, nested = false): Promise<void> {
  const run = new SubjectRun();
  const dir = run.dir(name);
  const top = run.dir(`${name}-root`);
  const root = makeRoot(nested ? join(top, 'root') : top);
  try {
    await body({ root, dir, run, start: async (args = []) => (run.subject = await startInRoot(root, args)) });
  } finally {
    await run.cleanup();
  }
}

/** Dumps the tree of `pid` (killing it) and waits for every task of it to be gone; its pids. */
export async function dumpGone(pid: number, dir: string, opts: Partial<DumpOptions> = {}): Promise<number[]> {
  const r = await dump({ pid, imagesDir: dir, progress: false, ...opts });
  for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
  return r.pids;
}

/** The name of the mountpoints image of the mount namespace task `pid` of the dump is in. */
export function mountsFile(dir: string, pid = 1): string {
  const ids = readImage(join(dir, `ids-${pid}.img`)).entries[0] as Record<string, number>;
  return `mountpoints-${ids['mnt_ns_id']}.img`;
}

/** The entries of mountsFile, as the fields a test looks at. */
export function mountsOf<M>(dir: string, pid = 1): M[] {
  return readImage(join(dir, mountsFile(dir, pid))).entries as M[];
}

/** The entry of `mp` in `mounts`: there must be one. */
export function at<M extends { mountpoint: string }>(mounts: M[], mp: string): M {
  const m = mounts.find((x) => x.mountpoint === mp);
  assert.ok(m, `${mp} in the mountpoints image`);
  return m;
}
