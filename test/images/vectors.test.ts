/**
 * Every CRIU 4.2 vector image: crit-ts output is byte-identical to crit 4.2's
 * (decode plain and --pretty, show, show --nopl, info, x), and encoding crit's
 * JSON (plain or pretty) gives back the original image bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../../src/images/index.js';
import { decodeImage, encodeImage, iterateImage, readImage } from '../../src/images/index.js';
import { imageBytesToJsonText, jsonTextToImageBytes } from '../../src/images/json/index.js';
import { CRIT_TS, subjects, VECTORS, vectorImages, vectorsMissing } from './vectors.js';

const skip = vectorsMissing();

function critTs(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [CRIT_TS, ...args], { encoding: 'utf8' });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

test('decode plain and --pretty equal crit 4.2, encode gives the original bytes', { skip }, () => {
  const images = vectorImages();
  assert.ok(images.length >= 71, `found ${images.length} vector images`);
  for (const v of images) {
    const buf = readFileSync(v.path);
    for (const pretty of [false, true]) {
      const want = readFileSync(join(v.base, 'json-4.2', `${v.file}${pretty ? '.pretty' : ''}.json`), 'utf8');
      assert.equal(imageBytesToJsonText(buf, v.file, { pretty }), want, `${v.subject}/${v.file} pretty=${pretty}`);
      assert.ok(jsonTextToImageBytes(want, v.file).equals(buf), `encode ${v.subject}/${v.file} pretty=${pretty}`);
    }
  }
});

test('decodeImage/encodeImage round trip and the streaming reader agree', { skip }, () => {
  for (const v of vectorImages()) {
    const buf = readFileSync(v.path);
    const img = decodeImage(buf, v.file);
    assert.ok(encodeImage(img.kind.name, img.entries, img.extras).equals(buf), `${v.subject}/${v.file}`);
    const whole = readImage(v.path);
    const stream = iterateImage(v.path);
    const streamed = [...stream.entries];
    assert.equal(stream.kind.name, whole.kind.name);
    assert.deepEqual(streamed.map((f) => f.entry), whole.entries, `${v.subject}/${v.file} streamed`);
    assert.deepEqual(streamed.map((f) => f.extra), whole.extras, `${v.subject}/${v.file} streamed extras`);
  }
});

test('crit-ts decode -o writes no trailing newline; stdout does', { skip }, () => {
  const v = vectorImages().find((x) => x.file === 'files.img' && x.subject === 'fds');
  assert.ok(v);
  const dir = mkdtempSync(join(tmpdir(), 'crit-ts-'));
  try {
    const out = join(dir, 'files.json');
    const r = critTs(['decode', '-i', v.path, '-o', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(out, 'utf8'), readFileSync(join(v.base, 'json-4.2', 'files.img.json'), 'utf8'));
    const s = critTs(['decode', '--pretty', '-i', v.path]);
    assert.equal(s.stdout, `${readFileSync(join(v.base, 'json-4.2', 'files.img.pretty.json'), 'utf8')}\n`);
    const img = join(dir, 'files.img');
    const e = critTs(['encode', '-i', join(v.base, 'json-4.2', 'files.img.pretty.json'), '-o', img]);
    assert.equal(e.status, 0, e.stderr);
    assert.ok(readFileSync(img).equals(readFileSync(v.path)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('crit-ts decode | crit-ts encode through pipes gives back the core images byte for byte', { skip }, () => {
  // Every image goes through the same functions in the test above; here the CLI's stdin/stdout path,
  // on the images with the most fields (two node starts per image, so not all of them).
  const cores = vectorImages().filter((v) => v.file.startsWith('core-') || v.file === 'files.img');
  assert.ok(cores.length > 0);
  for (const [i, v] of cores.entries()) {
    const buf = readFileSync(v.path);
    for (const pretty of i === 0 ? [[], ['--pretty']] : [[]]) {
      const json = spawnSync(process.execPath, [CRIT_TS, 'decode', ...pretty], { input: buf, maxBuffer: 1 << 28 });
      assert.equal(json.status, 0, `${v.subject}/${v.file}: ${json.stderr.toString()}`);
      const back = spawnSync(process.execPath, [CRIT_TS, 'encode'], { input: json.stdout, maxBuffer: 1 << 28 });
      assert.equal(back.status, 0, `${v.subject}/${v.file}: ${back.stderr.toString()}`);
      assert.ok(back.stdout.equals(buf), `${v.subject}/${v.file} ${pretty.join('')}: ${back.stdout.length} bytes back, ${buf.length} read`);
    }
  }
});

test('crit-ts show and show --nopl equal crit 4.2', { skip }, () => {
  let n = 0;
  for (const v of vectorImages()) {
    const show = join(v.base, 'show-4.2', `${v.file}.json`);
    if (existsSync(show)) {
      assert.equal(critTs(['show', v.path]).stdout, readFileSync(show, 'utf8'), `show ${v.file}`);
      n++;
    }
    const nopl = join(v.base, 'show-4.2', `${v.file}.nopl.json`);
    if (existsSync(nopl)) {
      assert.equal(critTs(['show', '--nopl', v.path]).stdout, readFileSync(nopl, 'utf8'), `show --nopl ${v.file}`);
      n++;
    }
  }
  assert.ok(n >= 4, `compared ${n} show outputs`);
});

/** Images where crit 4.2's info is wrong: it reads payload bytes as the next entry's size. */
const CRIT_MISCOUNTS = new Set(['pipes-data.img', 'sk-queues.img']);

test('crit-ts info equals crit 4.2 (and counts payload images right)', { skip }, () => {
  for (const v of vectorImages()) {
    const want = readFileSync(join(v.base, 'info-4.2', `${v.file}.txt`), 'utf8');
    const got = critTs(['info', v.path]);
    assert.equal(got.status, 0, got.stderr);
    if (CRIT_MISCOUNTS.has(v.file)) {
      const img = readImage(v.path);
      assert.equal(got.stdout, `{\n    "magic": "${img.kind.name}",\n    "count": ${img.entries.length}\n}\n`, v.file);
      assert.notEqual(got.stdout, want, `${v.file}: crit 4.2 miscounts this one`);
    } else {
      assert.equal(got.stdout, want, `info ${v.subject}/${v.file}`);
    }
  }
});

test('crit-ts x ps|fds|mems|rss equal crit 4.2 (zombie dumps do not crash)', { skip }, () => {
  for (const subject of subjects()) {
    for (const what of ['ps', 'fds', 'mems', 'rss']) {
      const want = readFileSync(join(VECTORS, subject, 'x-4.2', `${what}.txt`), 'utf8');
      const got = critTs(['x', join(VECTORS, subject, 'img'), what]);
      assert.equal(got.status, 0, `${subject} x ${what}: ${got.stderr}`);
      // Where crit crashed on the zombie (x-4.2/<what>.error.txt), it printed the live tasks first:
      // those lines are exactly ours, and we print nothing for the zombie.
      assert.equal(got.stdout, want, `${subject} x ${what}`);
      assert.equal(got.stderr, '');
    }
  }
});

test('vectors directory resolves relative to the repo root', () => {
  assert.match(VECTORS, /shared[/\\]vectors[/\\]criu-4\.2$/);
});
