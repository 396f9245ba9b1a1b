/**
 * Images are checked before anything is created (docs/security.md): a dump
 * of an 8-thread subject is copied and damaged one way per copy. Each
 * restore is refused with one error naming the image and the field, and
 * nothing is created (no task, no stub). Beyond CRIU: criu-ts-checksums
 * catches changed bytes that leave every image consistent (a flipped byte
 * in the pages), `--skip-checksums` overrides it, and crit-ts shows it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, isCriuTsError, restore } from '../../src/api/index.js';
import { readImage, writeImage } from '../../src/images/index.js';
import { isAlive, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, strayStubs, tempDir, waitGone } from '../e2e/helpers.js';
import { vmhAvailable } from '../../src/images/vmh.js';

let subject: Subject | undefined;
const dirs: string[] = [];
before(() => {
  closeInheritedFds();
  becomeSubreaper();
});
after(async () => {
  if (subject !== undefined) {
    await killAndWait(subject.pid);
    subject.cleanup();
  }
  for (const d of dirs) removeDir(d);
  assert.deepEqual(strayStubs(), [], 'restore stubs left behind');
});

function copyOf(src: string): string {
  const d = tempDir('damaged');
  dirs.push(d);
  cpSync(src, d, { recursive: true });
  return d;
}

/** A restore of `dir` must fail with a message matching `re`, leaving nothing. */
async function refused(dir: string, re: RegExp, pid: number, skipChecksums = true): Promise<void> {
  await assert.rejects(restore({ imagesDir: dir, skipChecksums }), (e: unknown) => {
    assert.ok(isCriuTsError(e), String(e));
    assert.match(e.message, re);
    assert.equal(e.message.split('\n').length, 1, 'one line');
    return true;
  });
  assert.equal(isAlive(pid), false, 'nothing restored');
  assert.deepEqual(strayStubs(), [], 'no stub left');
}

test('damaged dumps are refused before anything is created, naming image and field', { timeout: 180_000 }, async () => {
  subject = await startSubject('threads', [], { pthread: true });
  const pid = subject.pid;
  const good = tempDir('good');
  dirs.push(good);
  await dump({ pid, imagesDir: good });
  assert.ok(await waitGone(pid));
  assert.ok(existsSync(join(good, 'criu-ts-checksums')), 'the dump writes criu-ts-checksums');

  // pstree entry with threads: [] (the restore used to make 1 of 9 threads).
  let d = copyOf(good);
  const ps = readImage(join(d, 'pstree.img'));
  (ps.entries[0] as { threads: number[] }).threads = [];
  writeImage(join(d, 'pstree.img'), 'PSTREE', ps.entries as Record<string, unknown>[]);
  await refused(d, new RegExp(`pstree\\.img: task ${pid} threads: empty`), pid);
  await refused(d, /pstree\.img: (size \d+, the dump wrote|contents changed)/, pid, false);

  // One thread left out of pstree: its core is then nobody's.
  d = copyOf(good);
  const ps2 = readImage(join(d, 'pstree.img'));
  const threads = (ps2.entries[0] as { threads: number[] }).threads;
  const dropped = threads.pop();
  writeImage(join(d, 'pstree.img'), 'PSTREE', ps2.entries as Record<string, unknown>[]);
  await refused(d, new RegExp(`core-${dropped}\\.img: thread: ${dropped} is in no task's threads`), pid);

  // A missing fdinfo image is an error, not "no fds".
  d = copyOf(good);
  const fdinfo = readdirSync(d).find((n) => n.startsWith('fdinfo-'));
  assert.ok(fdinfo !== undefined);
  unlinkSync(join(d, fdinfo));
  await refused(d, new RegExp(`${fdinfo.replace('.', '\\.')}: missing \\(ids-${pid}\\.img files_id`), pid);

  // An fd naming a file files.img does not have.
  d = copyOf(good);
  const fi = readImage(join(d, fdinfo));
  (fi.entries[0] as { id: number }).id = 99999;
  writeImage(join(d, fdinfo), 'FDINFO', fi.entries as Record<string, unknown>[]);
  await refused(d, /fd \d+ id: file 99999 is not in files\.img/, pid);

  // A pgid of -1 (as the uint32 it is stored in): kill(2) would read it as "every process".
  d = copyOf(good);
  const ps3 = readImage(join(d, 'pstree.img'));
  (ps3.entries[0] as { pgid: number }).pgid = 4294967295;
  writeImage(join(d, 'pstree.img'), 'PSTREE', ps3.entries as Record<string, unknown>[]);
  await refused(d, new RegExp(`pstree\\.img: task ${pid} pgid: 4294967295 is not a pid`), pid);

  // A run id that would splice a command into nft's input (it names the network lock's table).
  d = copyOf(good);
  const inv = readImage(join(d, 'inventory.img'));
  (inv.entries[0] as { dump_criu_run_id: string }).dump_criu_run_id = 'x; flush ruleset';
  writeImage(join(d, 'inventory.img'), 'INVENTORY', inv.entries as Record<string, unknown>[]);
  await refused(d, /inventory\.img: dump_criu_run_id "x; flush ruleset" is not a run id/, pid);

  // Pages cut short: the pagemap no longer adds up (and the checksum says so first).
  d = copyOf(good);
  const pagesName = readdirSync(d).find((n) => /^pages-\d+\.img$/.test(n)) ?? 'pages-1.img';
  const pagesPath = join(d, pagesName);
  truncateSync(pagesPath, readFileSync(pagesPath).length - 4096);
  await refused(d, new RegExp(`${pagesName.replace('.', '\\.')}: size: \\d+ bytes, but pagemap-${pid}\\.img list \\d+ pages`), pid);
  await refused(d, /size \d+, the dump wrote \d+ \(criu-ts-checksums/, pid, false);

  // A flipped byte in the pages: every image still consistent, only the checksum tells.
  d = copyOf(good);
  const bytes = readFileSync(join(d, pagesName));
  const mid = bytes.length >> 1;
  bytes[mid] = (bytes[mid] ?? 0) ^ 0x40;
  writeFileSync(join(d, pagesName), bytes);
  await refused(d, new RegExp(`${pagesName.replace('.', '\\.')}: contents changed since the dump at bytes \\d+\\.\\.\\d+ \\((SHA-256|vmh256) differs`), pid, false);
  // The command line says it in one line too.
  const cli = await runCli('criu-ts', ['restore', '-d', '-D', d]);
  assert.equal(cli.code, 1);
  assert.equal(cli.stderr.trim().split('\n').length, 1, cli.stderr);
  assert.match(cli.stderr, /contents changed since the dump/);
  assert.equal(isAlive(pid), false);

  // crit-ts shows the checksums image.
  const shown = await runCli('crit-ts', ['show', join(good, 'criu-ts-checksums')]);
  assert.equal(shown.code, 0, shown.stderr);
  const doc = JSON.parse(shown.stdout) as { magic: string; entries: { name: string; size: number; algorithm?: string }[] };
  assert.equal(doc.magic, 'CRIU_TS_CHECKSUMS');
  const names = doc.entries.map((e) => e.name);
  for (const n of ['pstree.img', `core-${pid}.img`, pagesName, 'inventory.img', 'stats-dump']) assert.ok(names.includes(n), `${n} listed`);
  // The pages' digest names its algorithm (vmh256 for 4 MiB or more where WebAssembly SIMD runs); small files keep SHA-256 (no field).
  const pagesEntry = doc.entries.find((e) => e.name === pagesName);
  assert.equal(pagesEntry?.algorithm, vmhAvailable() && Number(pagesEntry?.size) >= 4 << 20 ? 'vmh256' : undefined);
  assert.equal(doc.entries.find((e) => e.name === 'pstree.img')?.algorithm, undefined);

  // A file an earlier dump into the same directory left behind (CRIU overwrites what it writes and
  // leaves the rest): not in this dump's criu-ts-checksums, so passed over; without that list every
  // file is taken as the dump's, and the stray core is refused.
  cpSync(join(good, `core-${pid}.img`), join(good, 'core-1.img'));
  await refused(good, /core-1\.img: thread: 1 is in no task's threads/, pid);

  // The undamaged dump restores (the stray core beside it), and the subject passes.
  const r = await restore({ imagesDir: good });
  assert.equal(r.pid, pid);
  const res = await subject.terminateAndResult();
  assert.ok(res.ok, res.text);
});
