/**
 * SHA-256 by the OpenSSL that Node itself is built with, called through
 * koffi: the same code node:crypto runs (SHA-NI where the CPU has it), so
 * the same digests, without loading node:crypto. A dump or restore makes
 * syscalls through koffi anyway, where node:crypto cost about 7 ms of CPU
 * to load (25 internal modules) and digested only the images' checksums
 * (docs/performance.md, "Start-up, session 14").
 *
 * The node binary exports OpenSSL's symbols for addons; `SHA256_Init`,
 * `_Update` and `_Final` keep their state in a SHA256_CTX that is a
 * Buffer of ours (112 bytes), so a stream left undigested leaks nothing
 * native. Before first use the binding must digest a known answer right
 * (FIPS 180-2's "abc" and its two-block example); where the symbols are
 * missing (a Node built against a system OpenSSL that hides them, a
 * future OpenSSL without these calls) or give anything else, node:crypto
 * does it all, as before.
 */
import { nodeCrypto } from '../builtins.js';
import { addr, programFunction } from './libc.js';

/** A running digest: `update` any number of times, then `digest` once. */
export interface Sha256Stream {
  update(data: Uint8Array): Sha256Stream;
  digest(): Buffer;
}

/** sizeof(SHA256_CTX): eight state words, two length words, a 64-byte block, two counts (openssl/sha.h) */
const CTX_BYTES = 112;
const DIGEST_BYTES = 32;

interface Native {
  oneShot(data: bigint, len: number, md: bigint): unknown;
  init(ctx: bigint): number;
  update(ctx: bigint, data: bigint, len: number): number;
  final(md: bigint, ctx: bigint): number;
}

let native: Native | null | undefined;

/** The address of `data`'s bytes, 0 for none (OpenSSL reads nothing for a length of 0). */
const at = (data: Uint8Array): bigint => (data.length === 0 ? 0n : addr(data));

function bind(): Native | null {
  const oneShot = programFunction('intptr_t SHA256(intptr_t d, size_t n, intptr_t md)');
  const init = programFunction('int SHA256_Init(intptr_t c)');
  const update = programFunction('int SHA256_Update(intptr_t c, intptr_t data, size_t len)');
  const final = programFunction('int SHA256_Final(intptr_t md, intptr_t c)');
  if (oneShot === undefined || init === undefined || update === undefined || final === undefined) return null;
  const n: Native = { oneShot, init, update, final };
  // Known answers (FIPS 180-2, B.1 and B.2), through both entries: anything else and node:crypto does it.
  const one = Buffer.from('abc', 'latin1');
  const two = Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', 'latin1');
  const want1 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
  const want2 = '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1';
  const md = Buffer.alloc(DIGEST_BYTES);
  n.oneShot(at(one), one.length, addr(md));
  if (md.toString('hex') !== want1) return null;
  const ctx = Buffer.alloc(CTX_BYTES);
  if (n.init(addr(ctx)) !== 1 || n.update(addr(ctx), at(two.subarray(0, 5)), 5) !== 1) return null;
  if (n.update(addr(ctx), at(two.subarray(5)), two.length - 5) !== 1 || n.final(addr(md), addr(ctx)) !== 1) return null;
  return md.toString('hex') === want2 ? n : null;
}

function lib(): Native | null {
  if (native === undefined) {
    try {
      native = bind();
    } catch {
      native = null;
    }
  }
  return native;
}

/** SHA-256 of `data` in one call. */
export function sha256(data: Uint8Array): Buffer {
  const n = lib();
  if (n === null) {
    const c = nodeCrypto();
    // crypto.hash (Node 20.12 and later) has no Hash object, whose native context lives until a full GC.
    return typeof c.hash === 'function' ? c.hash('sha256', data, 'buffer') : c.createHash('sha256').update(data).digest();
  }
  const md = Buffer.allocUnsafe(DIGEST_BYTES);
  n.oneShot(at(data), data.length, addr(md));
  return md;
}

class NativeStream implements Sha256Stream {
  private ctx: Buffer | null = Buffer.allocUnsafe(CTX_BYTES);

  constructor(private readonly n: Native) {
    n.init(addr(this.live()));
  }

  private live(): Buffer {
    if (this.ctx === null) throw new Error('SHA-256 stream used after its digest');
    return this.ctx;
  }

  update(data: Uint8Array): this {
    if (data.length > 0) this.n.update(addr(this.live()), addr(data), data.length);
    return this;
  }

  digest(): Buffer {
    const md = Buffer.allocUnsafe(DIGEST_BYTES);
    this.n.final(addr(md), addr(this.live()));
    this.ctx = null;
    return md;
  }
}

/** A running SHA-256. */
export function sha256Stream(): Sha256Stream {
  const n = lib();
  return n === null ? nodeCrypto().createHash('sha256') : new NativeStream(n);
}

/** Whether the digests come from the program's OpenSSL (else node:crypto): for tests. */
export function sha256Native(): boolean {
  return lib() !== null;
}
