/**
 * One checkpoint/restore of a subject for the file-kind tests: start it,
 * dump through the API, let the test look at the images (and compare
 * crit 3.17's JSON with crit-ts's), restore detached, SIGTERM, expect PASS.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import type { DumpOptions } from '../../../src/api/options.js';
import { readImage } from '../../../src/images/index.js';
import type { FileEntry } from '../../../src/images/messages.js';
import { isAlive, repoRoot, startSubject, type StartOptions, type Subject } from '../../lib/subjects.js';
import { closeInheritedFds, becomeSubreaper, removeDir, tempDir, waitGone, killSubject, passesAfterRestore } from '../../lib/harness.js';

export const CRIT = '/usr/bin/crit';
export const STEP_TIMEOUT_MS = 120_000;

export function setUpRunner(): void {
  closeInheritedFds();
  becomeSubreaper();
}

export interface RoundTrip {
  name: string;
  args?: string[];
  start?: StartOptions;
  dumpOpts?: Partial<DumpOptions>;
  restoreOpts?: { shellJob?: boolean };
  /** runs after the start, before the dump */
  before?(s: Subject): Promise<void>;
  /** looks at the images between dump and restore */
  check?(dir: string, s: Subject): void;
}

/** Every file entry of the dump. */
export function fileEntries(dir: string): FileEntry[] {
  return readImage(join(dir, 'files.img')).entries as unknown as FileEntry[];
}

/**
 * crit 3.17 and crit-ts print the same pretty JSON for these images of the
 * dump (and for every fdinfo image, whose fd types name our kinds).
 */
export function sameAsCrit(dir: string, images: string[]): void {
  if (!existsSync(CRIT)) return;
  const fdinfos = readdirSync(dir).filter((n) => /^fdinfo-\d+\.img$/.test(n));
  for (const img of [...images, ...fdinfos]) {
    const path = join(dir, img);
    const theirs = execFileSync(CRIT, ['decode', '--pretty', '-i', path], { encoding: 'utf8' });
    const ours = execFileSync(process.execPath, [join(repoRoot(), 'bin', 'crit-ts'), 'decode', '--pretty', '-i', path], { encoding: 'utf8' });
    assert.equal(ours, theirs, `${img}: crit-ts and crit 3.17 disagree`);
  }
}

/**
 * Like sameAsCrit for images where crit 3.17 lacks some of crit 4.2's
 * fields (it drops them): compare the parsed JSON with those left out of ours.
 */
export function sameAsCritWithout(dir: string, img: string, newFields: readonly string[]): void {
  if (!existsSync(CRIT)) return;
  const path = join(dir, img);
  const theirs: unknown = JSON.parse(execFileSync(CRIT, ['decode', '--pretty', '-i', path], { encoding: 'utf8' }));
  const ours: unknown = JSON.parse(execFileSync(process.execPath, [join(repoRoot(), 'bin', 'crit-ts'), 'decode', '--pretty', '-i', path], { encoding: 'utf8' }));
  const drop = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(drop);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v).filter(([k]) => !newFields.includes(k)).map(([k, x]) => [k, drop(x)]));
  };
  assert.deepEqual(drop(ours), theirs, `${img}: crit-ts and crit 3.17 disagree`);
}

export async function roundTrip(rt: RoundTrip): Promise<void> {
  const dir = tempDir(`kind-${rt.name}`);
  let s: Subject | undefined;
  try {
    s = await startSubject(rt.name, rt.args ?? [], rt.start ?? {});
    await rt.before?.(s);
    await dump({ pid: s.pid, imagesDir: dir, progress: false, ...rt.dumpOpts });
    assert.ok(await waitGone(s.pid), `pid ${s.pid} still exists after the dump`);
    rt.check?.(dir, s);
    const r = await restore({ imagesDir: dir, progress: false, ...rt.restoreOpts });
    assert.equal(r.pid, s.pid);
    await passesAfterRestore(s);
  } finally {
    await killSubject(s);
    removeDir(dir);
  }
}

/**
 * Subject `name` (with `args`) is refused at dump in one line matching
 * `message`, and runs on unharmed: its own check passes afterwards.
 */
export async function refusedAtDump(name: string, args: string[], message: RegExp): Promise<void> {
  const dir = tempDir(`${name}-refused`);
  const s = await startSubject(name, args);
  try {
    await assert.rejects(dump({ pid: s.pid, imagesDir: join(dir, 'img'), progress: false }), (e: Error) => {
      assert.match(e.message, message);
      return true;
    });
    assert.ok(isAlive(s.pid), 'the refused task still runs');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await killSubject(s);
    removeDir(dir);
  }
}
