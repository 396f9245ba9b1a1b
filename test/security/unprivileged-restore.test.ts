/**
 * A restore for an unprivileged caller gets only the caller's credentials
 * (issue 9, point 1; src/restore/authorize.ts). A process of `nobody` with
 * ghost files is dumped by root; copies of its images are then edited to ask
 * for more than the caller has: another uid, a group it is not in,
 * capabilities, securebits, a negative oom_score_adj, a set-id ghost file, a
 * ghost file owned by root. Each is refused with EPERM and one line naming
 * the thread or image and what it asks for, before anything is created; the
 * images as dumped restore for the caller, and the subject passes as nobody
 * with no capabilities. (test/security/rpc-callers.test.ts shows the same
 * through the RPC service with a real unprivileged client.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { readImage, writeImage } from '../../src/images/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { isAlive, startSubject } from '../lib/subjects.js';
import { removeDir, strayStubs, tempDir, useSubjectCleanup, waitGone } from '../e2e/helpers.js';

const NOBODY = 65534;
const caller = { uid: NOBODY, gid: NOBODY, groups: [], capSysPtrace: false };
const { subjects, dirs } = useSubjectCleanup();

type Edit = { what: string; file: (dir: string, pid: number) => string; edit: (e: Record<string, unknown>) => void; refused: RegExp };

const creds = (e: Record<string, unknown>): Record<string, unknown> => ((e['thread_core'] as Record<string, unknown>)['creds'] as Record<string, unknown>);
const tc = (e: Record<string, unknown>): Record<string, unknown> => (e['tc'] as Record<string, unknown>);
const core = (dir: string, pid: number): string => join(dir, `core-${pid}.img`);
const ghost = (dir: string): string => join(dir, readdirSync(dir).find((f) => f.startsWith('ghost-file-')) ?? 'no-ghost-file');

const EDITS: readonly Edit[] = [
  { what: 'another uid', file: core, edit: (e) => { creds(e)['euid'] = 0; }, refused: /^not restored for an unprivileged caller: thread \d+ would run as uids 65534\/0\/65534\/65534, the caller is uid 65534$/ },
  { what: 'a group the caller is not in', file: core, edit: (e) => { creds(e)['groups'] = [0]; }, refused: /^not restored for an unprivileged caller: thread \d+ would be in groups 0 the caller is not in$/ },
  { what: 'an effective capability', file: core, edit: (e) => { creds(e)['cap_eff'] = [1 << 21, 0]; }, refused: /^not restored for an unprivileged caller: thread \d+ would hold capabilities$/ },
  { what: 'an ambient capability', file: core, edit: (e) => { creds(e)['cap_amb'] = [1, 0]; }, refused: /^not restored for an unprivileged caller: thread \d+ would hold capabilities$/ },
  { what: 'securebits', file: core, edit: (e) => { creds(e)['secbits'] = 1; }, refused: /^not restored for an unprivileged caller: thread \d+ would have securebits 0x1$/ },
  { what: 'a negative oom_score_adj', file: core, edit: (e) => { tc(e)['oom_score_adj'] = -1000; }, refused: /^not restored for an unprivileged caller: task \d+ would get oom_score_adj -1000$/ },
  { what: 'a set-uid ghost file', file: ghost, edit: (e) => { e['mode'] = Number(e['mode']) | 0o4000; }, refused: /^not restored for an unprivileged caller: ghost-file-\d+\.img: a set-id file$/ },
  { what: 'a ghost file owned by root', file: ghost, edit: (e) => { e['uid'] = 0; }, refused: /^not restored for an unprivileged caller: ghost-file-\d+\.img: a file owned by uid 0$/ },
];

test('for an unprivileged caller, images asking for other ids, capabilities, securebits or set-id files are refused before anything is made; its own restore to it', { timeout: 180_000 }, async () => {
  const s = await startSubject('ghost-files', [], { uid: NOBODY, gid: NOBODY });
  subjects.push(s);
  const base = tempDir('unpriv-base');
  dirs.push(base);
  await dump({ pid: s.pid, imagesDir: base, progress: false });
  assert.ok(await waitGone(s.pid), 'dumped');
  const filesBefore = readdirSync(s.workDir).sort();
  for (const e of EDITS) {
    const dir = tempDir('unpriv-case');
    try {
      cpSync(base, dir, { recursive: true });
      const path = e.file(dir, s.pid);
      const img = readImage(path);
      e.edit(img.entries[0] as Record<string, unknown>);
      writeImage(path, img.kind.name, img.entries, img.extras);
      // Edited on purpose: past the checksums, to the check itself.
      await assert.rejects(restore({ imagesDir: dir, progress: false, skipChecksums: true, asCaller: caller }), (err: unknown) => {
        assert.ok(isCriuTsError(err) && err.code === 'EPERM', `${e.what}: ${String(err)}`);
        assert.match(err.message, e.refused, e.what);
        return true;
      });
      assert.ok(!isAlive(s.pid), `${e.what}: nothing restored`);
      assert.deepEqual(strayStubs(), [], `${e.what}: no stub`);
      assert.deepEqual(readdirSync(s.workDir).sort(), filesBefore, `${e.what}: no ghost file written back`);
    } finally {
      removeDir(dir);
    }
  }
  const r = await restore({ imagesDir: base, progress: false, asCaller: caller });
  assert.equal(r.pid, s.pid);
  const status = readFileSync(`/proc/${s.pid}/status`, 'utf8');
  assert.match(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
  assert.match(status, /^CapEff:\s+0+$/m);
  const out = await s.terminateAndResult();
  assert.ok(out.ok, out.text);
});
