/**
 * crit-ts on bad input: truncated files, wrong magic, garbage, raw images,
 * bad JSON, missing files, bad command lines. Each gives exactly one line
 * on stderr (naming the file and, for image faults, the byte offset), exit
 * status 1, and never a stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCriuTsError } from '../../src/errors.js';
import { iterateImage, readImage } from '../../src/images/index.js';
import { CRIT_TS, VECTORS, vectorsMissing } from '../images/vectors.js';

function critTs(args: string[], input?: string | Buffer): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [CRIT_TS, ...args], { encoding: 'utf8', input: input ?? '' });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

function expectOneLineError(r: { stdout: string; stderr: string; status: number | null }, ...needles: (string | RegExp)[]): void {
  assert.equal(r.status, 1, `exit status (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n');
  assert.equal(lines.length, 2, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  assert.equal(lines[1], '');
  assert.match(lines[0] ?? '', /^crit-ts: /);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:|node:internal/);
  for (const n of needles) assert.match(lines[0] ?? '', typeof n === 'string' ? new RegExp(n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : n);
}

const skip = vectorsMissing();
let dir = '';
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'crit-bad-'));
});
test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function vec(subject: string, file: string): Buffer {
  return readFileSync(join(VECTORS, subject, 'img', file));
}

test('truncated image: names the file and the byte offset', { skip }, () => {
  const p = join(dir, 'core-12.img');
  writeFileSync(p, vec('fds', 'core-16851.img').subarray(0, 40));
  expectOneLineError(critTs(['decode', '-i', p]), 'core-12.img: truncated entry at byte 8 (need 1801 bytes, have 28)');
  expectOneLineError(critTs(['info', p]), 'core-12.img', 'byte 8');
  expectOneLineError(critTs(['show', p]), 'core-12.img', 'byte 8');
});

test('truncated payload of pipes-data', { skip }, () => {
  const p = join(dir, 'pipes-data.img');
  writeFileSync(p, vec('fds', 'pipes-data.img').subarray(0, 60));
  expectOneLineError(critTs(['decode', '-i', p]), 'pipes-data.img: truncated payload of entry 0 at byte 22 (need 100 bytes, have 38)');
});

test('wrong magic, garbage, empty and raw images', { skip }, () => {
  const wrong = join(dir, 'wrong.img');
  const b = Buffer.from(vec('fds', 'fs-16851.img'));
  b.writeUInt32LE(0x12345678, 4);
  writeFileSync(wrong, b);
  expectOneLineError(critTs(['decode', '-i', wrong]), 'wrong.img: unknown magic 0x12345678 at byte 4');
  const garbage = join(dir, 'garbage.img');
  writeFileSync(garbage, Buffer.from('this is not an image at all, just text\n'));
  expectOneLineError(critTs(['decode', '--pretty', '-i', garbage]), 'garbage.img: unknown magic');
  const empty = join(dir, 'empty.img');
  writeFileSync(empty, Buffer.alloc(0));
  expectOneLineError(critTs(['info', empty]), 'empty.img: too short for an image magic (0 bytes)');
  expectOneLineError(critTs(['decode', '-i', join(VECTORS, 'fds', 'img', 'pages-1.img')]), 'pages-1.img: PAGES is a raw image');
  const bad = join(dir, 'fs-1.img');
  const c = Buffer.from(vec('fds', 'fs-16851.img'));
  c[12] = 0x0f; // first tag of the entry: wire type 7
  writeFileSync(bad, c);
  expectOneLineError(critTs(['decode', '-i', bad]), 'fs-1.img: bad fs_entry (entry 0) at byte 12: invalid wire type 7');
});

test('image on stdin is named <stdin>', { skip }, () => {
  expectOneLineError(critTs(['decode'], vec('fds', 'core-16851.img').subarray(0, 20)), '<stdin>: truncated entry at byte 8');
});

test('bad JSON for encode', () => {
  expectOneLineError(critTs(['encode'], '{"magic": "CORE", "entries": [{"mtype": 5x}]}'), '<stdin>: bad JSON at byte 41');
  expectOneLineError(critTs(['encode'], '{"magic": "NOPE", "entries": []}'), '<stdin>', 'unknown image kind "NOPE"');
  expectOneLineError(critTs(['encode'], '{"magic": "CORE", "entries": [{}]}'), '<stdin>', 'core_entry.mtype: missing required field');
  expectOneLineError(critTs(['encode'], '{"magic": "FS", "entries": [{"cwd_id": "0xzz", "root_id": 1}]}'), '<stdin>', 'cwd_id');
  expectOneLineError(critTs(['encode'], '{"magic": "FS", "entries": [{"cwd_id": -1, "root_id": 1}]}'), '<stdin>', 'cwd_id', 'out of range');
  expectOneLineError(critTs(['encode'], '[1, 2'), '<stdin>: bad JSON');
  const j = join(dir, 'x.json');
  writeFileSync(j, '{"magic": "PIPES_DATA", "entries": [{"pipe_id": 1, "bytes": 3, "extra": "!!notbase64"}]}');
  expectOneLineError(critTs(['encode', '-i', j]), 'x.json', 'base64');
});

test('missing files and bad command lines', () => {
  expectOneLineError(critTs(['decode', '-i', join(dir, 'nope.img')]), 'nope.img: no such file');
  expectOneLineError(critTs(['info', join(dir, 'nope.img')]), 'nope.img: no such image');
  expectOneLineError(critTs(['x', dir, 'ps']), 'pstree.img: no such image');
  expectOneLineError(critTs(['frobnicate']), 'unknown command "frobnicate"');
  expectOneLineError(critTs([]), 'too few arguments');
  expectOneLineError(critTs(['decode', '--bogus']), 'unknown option --bogus');
  expectOneLineError(critTs(['decode', '-i']), '-i needs a value');
  expectOneLineError(critTs(['x', dir, 'what']), 'invalid choice');
  expectOneLineError(critTs(['show']), 'expected one image file');
});

test('help and version', () => {
  const h = critTs(['--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /decode/);
  assert.equal(critTs(['--version']).stdout, '4.2\n');
});

test('library errors: EIMAGE with file and offset, ENOIMAGE for missing files', { skip }, () => {
  const p = join(dir, 'core-7.img');
  writeFileSync(p, vec('fds', 'core-16851.img').subarray(0, 40));
  assert.throws(() => readImage(p), (e: unknown) => isCriuTsError(e) && e.code === 'EIMAGE' && e.data['file'] === p && e.data['offset'] === 8);
  assert.throws(() => [...iterateImage(p).entries], (e: unknown) => isCriuTsError(e) && e.code === 'EIMAGE' && e.data['offset'] === 8);
  assert.throws(() => readImage(join(dir, 'missing.img')), (e: unknown) => isCriuTsError(e) && e.code === 'ENOIMAGE');
});
