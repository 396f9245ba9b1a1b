/**
 * Lazy fields (src/images/lazy-fields.ts): a field kept lazy decodes, when
 * read, to what an eager decode gives, and a damaged message is refused by
 * the lazy decode exactly when the eager one refuses it (the restore
 * decodes a thread's FPU state only once the tree exists, so the up-front
 * check must catch all that decoding would).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessageRaw } from '../../src/images/codec.js';
import { encodeMessage, lazyFields } from '../../src/images/index.js';
import { defineMessage, f } from '../../src/images/schema/types.js';

defineMessage('lazy_test_leaf', [f(1, 'need', 'required', 'uint32'), f(2, 'words', 'repeated', 'uint64'), f(3, 'name', 'optional', 'string')]);
defineMessage('lazy_test_inner', [
  f(1, 'a', 'required', 'uint64'),
  f(2, 'vals', 'repeated', 'uint64'),
  f(3, 'packed', 'repeated', 'uint32', { packed: true }),
  f(4, 'leaf', 'optional', 'message', { ref: 'lazy_test_leaf' }),
  f(5, 'fx', 'repeated', 'fixed64'),
  f(6, 'by', 'optional', 'bytes'),
]);
defineMessage('lazy_test_outer', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'inner', 'required', 'message', { ref: 'lazy_test_inner' }),
  f(3, 'other', 'optional', 'message', { ref: 'lazy_test_leaf' }),
]);

const LAZY = lazyFields(['lazy_test_outer', 'inner']);

const sample = {
  id: 7,
  inner: {
    a: 1n << 60n,
    vals: Array.from({ length: 40 }, (_, i) => BigInt(i) * 0x1_0000_0001n),
    packed: [1, 300, 0xffffffff],
    leaf: { need: 3, words: [5n, 1n << 63n], name: 'x' },
    fx: [9n, 10n],
    by: Buffer.from([1, 2, 3]),
  },
  other: { need: 1 },
};

function outcome(run: () => unknown): string {
  try {
    return `ok ${JSON.stringify(run(), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`;
  } catch (e) {
    return `error ${(e as Error).message} at ${String((e as { pos?: number }).pos)}`;
  }
}

test('a lazy field decodes, when read, to what the eager decode gives; absent until read nothing is decoded again', () => {
  const bytes = encodeMessage('lazy_test_outer', sample);
  const eager = decodeMessageRaw('lazy_test_outer', bytes);
  const lazy = decodeMessageRaw('lazy_test_outer', bytes, 0, bytes.length, LAZY);
  assert.equal(typeof Object.getOwnPropertyDescriptor(lazy, 'inner')?.get, 'function');
  assert.deepEqual(lazy['inner'], eager['inner']);
  // Each read is a fresh decode: nothing held between reads.
  assert.notEqual(lazy['inner'], lazy['inner']);
  assert.deepEqual(encodeMessage('lazy_test_outer', lazy), bytes);
});

test('a lazy singular message seen twice is merged as the eager decode merges it', () => {
  const first = encodeMessage('lazy_test_outer', { id: 1, inner: { a: 1n, vals: [1n] } });
  const second = encodeMessage('lazy_test_outer', { id: 2, inner: { a: 2n, vals: [2n], leaf: { need: 4 } } });
  const both = Buffer.concat([first, second]);
  const lazy = decodeMessageRaw('lazy_test_outer', both, 0, both.length, LAZY);
  assert.equal(outcome(() => lazy), outcome(() => decodeMessageRaw('lazy_test_outer', both)));
});

test('damaged messages: the lazy decode refuses exactly what the eager decode refuses, and a lazy field that passed decodes', () => {
  const bytes = encodeMessage('lazy_test_outer', sample);
  // A fixed seed: the same 3000 damaged messages each run.
  let seed = 0x5eed;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(bytes);
    const how = rnd(3);
    let d: Buffer = b;
    if (how === 0) b[rnd(b.length)] = rnd(256);
    else if (how === 1) d = b.subarray(0, rnd(b.length));
    else d = Buffer.concat([b.subarray(0, rnd(b.length)), Buffer.from([rnd(256)]), b.subarray(rnd(b.length))]);
    const eager = outcome(() => decodeMessageRaw('lazy_test_outer', d));
    // Read whole (the getter runs): the same value, or the same first error.
    const lazy = outcome(() => decodeMessageRaw('lazy_test_outer', d, 0, d.length, LAZY));
    assert.equal(lazy, eager, `case ${i}: ${d.toString('hex')}`);
    if (eager.startsWith('error')) refused++;
  }
  assert.ok(refused > 300, `enough damaged cases refused (${refused})`);
});
