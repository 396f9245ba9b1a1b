/**
 * The pagemap_entry fast path (src/images/pagemap-codec.ts) against the
 * generic codec: a twin message with the same fields goes through the
 * schema walk, and both must give the same bytes and the same objects for
 * every shape, including the ones the fast path hands back (unknown
 * fields, fields out of order or repeated, values past 2^53, garbage).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage } from '../../src/images/index.js';
import { decodePagemapEntry } from '../../src/images/pagemap-codec.js';
import { defineMessage, f } from '../../src/images/schema/types.js';
import { setUnknownFields, unknownFieldsOf } from '../../src/images/codec.js';

defineMessage('pagemap_codec_twin', [
  f(1, 'vaddr', 'required', 'uint64'),
  f(2, 'compat_nr_pages', 'required', 'uint32'),
  f(3, 'in_parent', 'optional', 'bool'),
  f(4, 'flags', 'optional', 'uint32'),
  f(5, 'nr_pages', 'optional', 'uint64'),
]);

function outcome(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (e) {
    return { err: (e as Error).message.replaceAll('pagemap_codec_twin', 'pagemap_entry') };
  }
}

/** A small deterministic generator (xorshift), so a failure names its seed. */
function rng(seed: number): () => number {
  let x = seed | 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

test('entries of every shape encode to the bytes the schema walk writes and decode back the same', () => {
  const big = [0n, 1n, 127n, 128n, 0x7fff_ffff_f000n, (1n << 53n) - 1n, 1n << 53n, (1n << 56n) + 5n, (1n << 64n) - 1n];
  const shapes: Record<string, unknown>[] = [];
  for (const vaddr of big) {
    for (const nr of [undefined, 1n, 262144n, ...big.slice(-3)]) {
      shapes.push({ vaddr, compat_nr_pages: 0, flags: 4, ...(nr === undefined ? {} : { nr_pages: nr }) });
      shapes.push({ vaddr, compat_nr_pages: 0xffffffff, in_parent: true, ...(nr === undefined ? {} : { nr_pages: nr }) });
      shapes.push({ vaddr, compat_nr_pages: 3, in_parent: false, flags: 0 });
    }
  }
  for (const e of shapes) {
    const fast = encodeMessage('pagemap_entry', e);
    const slow = encodeMessage('pagemap_codec_twin', e);
    assert.deepEqual(fast, slow, `encode ${String(e['vaddr'])}`);
    assert.deepEqual(decodeMessage('pagemap_entry', fast), decodeMessage('pagemap_codec_twin', slow));
  }
});

test('the shapes the fast path leaves to the schema walk come out as the schema walk makes them', () => {
  const withUnknown: Record<string, unknown> = { vaddr: 4096n, compat_nr_pages: 0, nr_pages: 2n };
  setUnknownFields(withUnknown, [Buffer.from([0x30, 0x07])]); // field 6, varint 7
  assert.deepEqual(encodeMessage('pagemap_entry', withUnknown), encodeMessage('pagemap_codec_twin', withUnknown));
  const bytes = encodeMessage('pagemap_entry', withUnknown);
  assert.equal(decodePagemapEntry(bytes, 0, bytes.length), undefined);
  const back = decodeMessage('pagemap_entry', bytes);
  assert.equal(unknownFieldsOf(back).length, 1);
  // Wrong types and missing required fields: the schema walk's errors, word for word.
  for (const bad of [{ vaddr: 1, compat_nr_pages: 0 }, { vaddr: -1n, compat_nr_pages: 0 }, { vaddr: 1n }, { vaddr: 1n, compat_nr_pages: 0, flags: 1.5 }, { vaddr: 1n, compat_nr_pages: 0, in_parent: 1 }]) {
    assert.deepEqual(outcome(() => encodeMessage('pagemap_entry', bad)), outcome(() => encodeMessage('pagemap_codec_twin', bad)));
  }
  // Out of order, repeated, a bool of 2, a long varint: decoded by the walk.
  const odd = [
    [0x10, 0x00, 0x08, 0x80, 0x20],
    [0x08, 0x01, 0x08, 0x02, 0x10, 0x00],
    [0x08, 0x01, 0x10, 0x00, 0x18, 0x02],
    [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x10, 0x00],
  ].map((b) => Buffer.from(b));
  for (const b of odd) {
    assert.equal(decodePagemapEntry(b, 0, b.length), undefined);
    assert.deepEqual(outcome(() => decodeMessage('pagemap_entry', b)), outcome(() => decodeMessage('pagemap_codec_twin', b)));
  }
});

test('random bytes decode, or fail, exactly as through the schema walk', () => {
  for (let seed = 1; seed <= 3000; seed++) {
    const r = rng(seed);
    const n = Math.floor(r() * 24);
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = r() < 0.4 ? [0x08, 0x10, 0x18, 0x20, 0x28][Math.floor(r() * 5)] as number : Math.floor(r() * 256);
    assert.deepEqual(outcome(() => decodeMessage('pagemap_entry', b)), outcome(() => decodeMessage('pagemap_codec_twin', b)), `seed ${seed}`);
  }
});
