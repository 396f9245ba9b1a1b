/**
 * Fuzz: thousands of mutated and truncated vector images (bit flips, byte
 * insertions/deletions, huge length words, truncation, spliced segments)
 * and mutated JSON through crit-ts's decode and encode paths. Every case
 * must end in success or a CriuTsError, quickly, without big allocations.
 * Prints its figures (cases, errors by kind, max ms) for the README.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isCriuTsError } from '../../src/errors.js';
import { decodeImage } from '../../src/images/index.js';
import { imageBytesToJsonText, jsonTextToImageBytes } from '../../src/images/json/index.js';
import { vectorImages, vectorsMissing } from '../images/vectors.js';
import { int, rng } from '../lib/rng.js';

type Mutator = (b: Buffer, r: () => number) => Buffer;

const MUTATORS: Record<string, Mutator> = {
  bitflip: (b, r) => {
    const c = Buffer.from(b);
    for (let k = 1 + int(r, 8); k > 0 && c.length > 0; k--) {
      const i = int(r, c.length);
      c[i] = (c[i] as number) ^ (1 << int(r, 8));
    }
    return c;
  },
  insert: (b, r) => {
    const i = int(r, b.length + 1);
    const ins = Buffer.from(Array.from({ length: 1 + int(r, 16) }, () => int(r, 256)));
    return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
  },
  delete: (b, r) => {
    const i = int(r, b.length);
    return Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + int(r, 16))]);
  },
  hugelen: (b, r) => {
    const c = Buffer.from(b);
    if (c.length < 4) return c;
    const words = [0xffffffff, 0x7fffffff, 0x80000000, 0x10000000, c.length * 2, 0xfffffff0];
    // aim at entry length words (every 4-aligned offset past the header) or anywhere
    const at = r() < 0.5 ? 8 + 4 * int(r, Math.max(1, (c.length - 12) >> 2)) : int(r, c.length - 3);
    c.writeUInt32LE(words[int(r, words.length)] ?? 0, Math.min(at, c.length - 4));
    return c;
  },
  hugevarint: (b, r) => {
    // a length-delimited field claiming far more bytes than exist
    const i = int(r, b.length + 1);
    return Buffer.concat([b.subarray(0, i), Buffer.from('12ffffffff0f', 'hex'), b.subarray(i)]);
  },
  truncate: (b, r) => b.subarray(0, int(r, b.length)),
  splice: (b, r) => {
    const i = int(r, b.length);
    const j = int(r, b.length);
    return Buffer.concat([b.subarray(0, i), b.subarray(j, j + 1 + int(r, 64)), b.subarray(i)]);
  },
};

const CATEGORIES: readonly (readonly [string, RegExp])[] = [
  ['missing required field', /missing required field/],
  ['truncated entry', /truncated entry at/],
  ['truncated entry size word', /truncated entry size/],
  ['truncated payload', /truncated (payload|ghost|queued|message size)/],
  ['unknown magic', /unknown magic/],
  ['short header', /too short for an image magic|truncated image magic/],
  ['invalid wire type', /invalid wire type/],
  ['invalid field number 0', /invalid field number/],
  ['truncated varint', /truncated varint/],
  ['varint over 10 bytes', /varint longer/],
  ['length beyond message', /length-delimited field too long/],
  ['truncated fixed field', /truncated field/],
  ['bad group', /group/],
  ['field past message end', /runs past the end/],
  ['nested too deep', /too deep/],
  ['payload length too large', /payload length/],
];

function kindOf(e: unknown): string {
  if (!isCriuTsError(e)) return `NOT-CriuTsError: ${String(e)}`;
  const hit = CATEGORIES.find(([, re]) => re.test(e.message));
  return `${e.code} ${hit?.[0] ?? e.message.replace(/^[^:]*: /, '').slice(0, 40)}`;
}

/** Cases per run: a count, not a time budget, so a busy machine runs the same cases (CRIU_TS_FUZZ_IMAGE_CASES overrides). */
const CASES = Number(process.env['CRIU_TS_FUZZ_IMAGE_CASES'] ?? 20000);
/** CPU time (not wall time: other processes do not count) one case may take before it is called a blow-up. */
function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

test('fuzzed images: only CriuTsError, fast, bounded memory', { skip: vectorsMissing(), timeout: 600_000 }, () => {
  const images = vectorImages().map((v) => ({ name: v.file, buf: readFileSync(v.path) }));
  const r = rng(0x5eed);
  const byKind = new Map<string, number>();
  let cases = 0;
  let ok = 0;
  let maxMs = 0;
  let maxCase = '';
  let maxExternal = 0;
  const baseExternal = process.memoryUsage().arrayBuffers;
  const start = performance.now();
  const names = Object.keys(MUTATORS);
  while (cases < CASES) {
    const img = images[int(r, images.length)];
    assert.ok(img);
    const mut = names[int(r, names.length)] ?? 'bitflip';
    let data = (MUTATORS[mut] as Mutator)(img.buf, r);
    if (r() < 0.2) data = (MUTATORS[names[int(r, names.length)] ?? 'bitflip'] as Mutator)(data, r);
    const t0 = process.cpuUsage();
    try {
      decodeImage(data, img.name);
      imageBytesToJsonText(data, img.name, { pretty: r() < 0.5 });
      ok++;
    } catch (e) {
      const k = kindOf(e);
      byKind.set(k, (byKind.get(k) ?? 0) + 1);
      if (!isCriuTsError(e)) assert.fail(`${mut} on ${img.name} threw ${String((e as Error).stack ?? e)}`);
    }
    const ms = cpuMs(t0);
    if (ms > maxMs) {
      maxMs = ms;
      maxCase = `${mut} on ${img.name}`;
    }
    maxExternal = Math.max(maxExternal, process.memoryUsage().arrayBuffers - baseExternal);
    cases++;
  }
  const total = performance.now() - start;
  const lines = [...byKind.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `    ${String(n).padStart(5)}  ${k}`);
  console.log(`fuzz (images): ${cases} cases in ${(total / 1000).toFixed(1)} s, ${ok} decoded fine, ${cases - ok} rejected; max ${maxMs.toFixed(1)} ms (${maxCase}); peak extra buffers ${(maxExternal / 1e6).toFixed(1)} MB\n${lines.join('\n')}`);
  assert.equal(cases, CASES);
  assert.ok(maxMs < 1000, `slowest case ${maxMs} ms of CPU`);
  assert.ok(maxExternal < 256e6, `buffers grew by ${maxExternal} bytes`);
});

test('fuzzed JSON for encode: only CriuTsError', { skip: vectorsMissing(), timeout: 600_000 }, () => {
  const docs = vectorImages().map((v) => readFileSync(`${v.base}/json-4.2/${v.file}.pretty.json`, 'utf8'));
  const r = rng(0xbeef);
  const byCode = new Map<string, number>();
  let cases = 0;
  while (cases < 3000) {
    const doc = docs[int(r, docs.length)] ?? '{}';
    let text = doc;
    const i = int(r, text.length);
    const op = int(r, 4);
    if (op === 0) text = text.slice(0, i);
    else if (op === 1) text = text.slice(0, i) + '"x0:,]}-1e999'.charAt(int(r, 13)) + text.slice(i + 1);
    else if (op === 2) text = text.replace(/\d+/, () => String(2n ** BigInt(int(r, 80))));
    else text = text.replace(/"[A-Z_]+"/, '"NOT_A_NAME"');
    try {
      jsonTextToImageBytes(text, 'fuzz.json');
      byCode.set('ok', (byCode.get('ok') ?? 0) + 1);
    } catch (e) {
      if (!isCriuTsError(e)) assert.fail(`JSON fuzz threw ${String((e as Error).stack ?? e)}`);
      byCode.set(e.code, (byCode.get(e.code) ?? 0) + 1);
    }
    cases++;
  }
  console.log(`fuzz (json): ${cases} cases: ${[...byCode.entries()].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  assert.equal(cases, 3000);
});
