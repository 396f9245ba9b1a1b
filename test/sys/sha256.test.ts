/**
 * SHA-256 by Node's own OpenSSL through koffi (sys/sha256.ts): every
 * digest equal to node:crypto's, one-shot and streamed, for lengths
 * around the 64-byte block and its 56-byte padding limit, views at odd
 * offsets of a larger buffer, typed arrays small enough to live on V8's
 * heap, and any cut of the input into updates; a run of a dump or restore
 * then loads no node:crypto.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { sha256, sha256Native, sha256Stream } from '../../src/sys/sha256.js';

const ref = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');

function pattern(len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + (i >> 8) * 13 + (i >> 16)) & 0xff;
  return b;
}

const LENGTHS = [0, 1, 2, 3, 31, 32, 33, 55, 56, 57, 63, 64, 65, 111, 112, 119, 120, 127, 128, 129, 1000, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20, (1 << 20) + 3];

test('Node built with its own OpenSSL: the digests come from it, not node:crypto', { skip: process.config.variables.node_shared_openssl ? 'this Node uses a shared OpenSSL' : false }, () => {
  assert.equal(sha256Native(), true);
});

test('one-shot: the digest of node:crypto for every length and offset, and for views and small typed arrays', () => {
  const big = pattern((1 << 20) + 64);
  for (const n of LENGTHS) {
    for (const off of [0, 1, 7, 13, 63]) {
      if (off + n > big.length) continue;
      const d = big.subarray(off, off + n);
      assert.equal(sha256(d).toString('hex'), ref(d), `length ${n} at offset ${off}`);
      assert.equal(sha256(new Uint8Array(d)).toString('hex'), ref(d), `length ${n}, a Uint8Array of its own`);
    }
  }
  const onHeap = new Uint8Array([1, 2, 3, 4, 5]);
  assert.equal(sha256(onHeap).toString('hex'), ref(onHeap), 'a typed array of a few bytes (kept on V8 heap)');
  assert.equal(sha256(Buffer.from('abc')).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256(Buffer.alloc(0)).toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('streamed: any cut of the input into updates gives the one-shot digest', () => {
  const big = pattern(300_000);
  for (const n of LENGTHS.filter((l) => l <= big.length - 5)) {
    const d = big.subarray(5, 5 + n);
    for (const step of [1, 3, 64, 1000, 65536]) {
      if (step === 1 && n > 5000) continue;
      const s = sha256Stream();
      for (let off = 0; off < n; off += step) s.update(d.subarray(off, off + step));
      assert.equal(s.digest().toString('hex'), ref(d), `length ${n} in updates of ${step}`);
    }
    const s = sha256Stream();
    let off = 0;
    for (let k = 1; off < n; k = k * 3 + 1) {
      s.update(d.subarray(off, off + k));
      off += k;
    }
    assert.equal(s.digest().toString('hex'), ref(d), `length ${n} in growing updates`);
  }
  const empty = sha256Stream();
  empty.update(Buffer.alloc(0));
  assert.equal(empty.digest().toString('hex'), ref(Buffer.alloc(0)));
});

test('streams side by side keep their own state (a context each, in a Buffer of ours)', () => {
  const a = pattern(10_000);
  const b = pattern(20_000).subarray(3);
  const sa = sha256Stream();
  const sb = sha256Stream();
  for (let off = 0; off < 20_000; off += 777) {
    sa.update(a.subarray(off, off + 777));
    sb.update(b.subarray(off, off + 777));
  }
  assert.equal(sa.digest().toString('hex'), ref(a));
  assert.equal(sb.digest().toString('hex'), ref(b));
});

test('a process that digests through sys/sha256.ts never loads node:crypto', { skip: sha256Native() ? false : 'no native SHA-256 here' }, () => {
  const url = new URL('../../src/sys/sha256.js', import.meta.url).href;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
    const { sha256, sha256Stream } = await import(${JSON.stringify(url)});
    sha256(Buffer.from('x'));
    sha256Stream().update(Buffer.from('y')).digest();
    process.stdout.write(String(process.moduleLoadList.some((m) => m.includes('crypto'))));
  `]).toString();
  assert.equal(out, 'false');
});
