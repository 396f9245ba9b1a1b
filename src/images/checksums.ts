/**
 * Checksums of a dump (beyond CRIU; docs/security.md): every file the dump
 * writes into the images dir is hashed as it is written, with no second
 * read: small images (SHA-256) from the bytes we encode, pages files
 * (vmh256, images/vmh.ts, where this Node runs it; a digest per 64 KiB
 * block) as they stream out (kinds/memory/pages-writer.ts). At the end
 * the digests go to `criu-ts-checksums`, an image CRIU never reads. A
 * restore checks every listed file before it creates anything and
 * refuses a file whose size or digest differ, naming it.
 *
 * Digests are recorded only for directories a dump has opened with
 * `beginChecksums`; other writers (crit-ts, tests) are unaffected.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import type { CriuTsChecksumEntry } from './messages.js';
import { imageFile } from './table.js';
import { blockDigests, digestsInFile, hasBlockDigests } from './checksums-lean.js';
import { BLOCK_BYTES, VMH256, algorithmProblem, blockHash, digestWith, sha256Of, streamWith, type BlockHash } from './block-hash.js';
import { VMH_BLOCK, vmhBlockDigests, vmhScratch } from './vmh.js';
import { sha256Stream, type Sha256Stream } from '../sys/sha256.js';

export const CHECKSUMS_IMAGE = imageFile('CRIU_TS_CHECKSUMS');

interface Digest {
  size: bigint;
  /** by `algorithm` (undefined: SHA-256) */
  sha256: Buffer;
  algorithm?: string;
  /** pages images: one SHA-256 per BLOCK_BYTES (block-hash.ts) */
  blocks?: Buffer;
}

interface Collector {
  files: Map<string, Digest>;
  /** time the dump spent on hashing: the cost of this feature */
  hashNs: bigint;
  bytes: bigint;
}

const collectors = new Map<string, Collector>();

export function beginChecksums(dir: string): void {
  collectors.set(resolve(dir), { files: new Map(), hashNs: 0n, bytes: 0n });
}

export function endChecksums(dir: string): Collector | undefined {
  const c = collectors.get(resolve(dir));
  collectors.delete(resolve(dir));
  return c;
}

/**
 * A running hash for a file being written to `path`; `done()` records it
 * (only if a dump collects that dir). OpenSSL's update runs natively on
 * the caller's bytes: no copy, nothing on the JS heap. `blocks`: a digest
 * per block as well (pages images, for lazy-pages; block-hash.ts).
 */
export class FileHasher {
  private readonly hash: Sha256Stream | BlockHash | undefined;
  private size = 0n;
  private readonly collector: Collector | undefined;

  /** `expectBytes`: about how big the file will be (its block digests are then allocated once). */
  constructor(private readonly path: string, blocks = false, expectBytes = 0) {
    this.collector = collectors.get(resolve(dirname(path)));
    if (this.collector === undefined) this.hash = undefined;
    else this.hash = blocks ? blockHash(BLOCK_BYTES, expectBytes) : sha256Stream();
  }

  update(data: Uint8Array): void {
    if (this.hash === undefined || this.collector === undefined) return;
    const t0 = process.hrtime.bigint();
    this.hash.update(data);
    this.collector.hashNs += process.hrtime.bigint() - t0;
    this.size += BigInt(data.length);
    this.collector.bytes += BigInt(data.length);
  }

  done(): void {
    if (this.hash === undefined || this.collector === undefined) return;
    const t0 = process.hrtime.bigint();
    const d = this.hash.digest();
    this.collector.hashNs += process.hrtime.bigint() - t0;
    const digest: Digest = Buffer.isBuffer(d) ? { size: this.size, sha256: d } : { size: this.size, ...d };
    this.collector.files.set(basename(this.path), digest);
  }
}

/** Record the digest of a whole file written at once. */
export function noteWritten(path: string, data: Uint8Array): void {
  const collector = collectors.get(resolve(dirname(path)));
  if (collector === undefined) return;
  // One-shot (sha256Of): no Hash object per image file, whose native context waits for a full GC.
  const t0 = process.hrtime.bigint();
  const sha256 = sha256Of(data);
  collector.hashNs += process.hrtime.bigint() - t0;
  collector.bytes += BigInt(data.length);
  collector.files.set(basename(path), { size: BigInt(data.length), sha256 });
}

/** The entries for criu-ts-checksums, by name. */
export function checksumEntries(dir: string): CriuTsChecksumEntry[] {
  const c = collectors.get(resolve(dir));
  if (c === undefined) return [];
  return [...c.files.entries()]
    .filter(([name]) => name !== CHECKSUMS_IMAGE)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, d]) => ({
      name, size: d.size, sha256: d.sha256,
      ...(d.blocks ? { block_size: BLOCK_BYTES, blocks: d.blocks } : {}),
      ...(d.algorithm !== undefined ? { algorithm: d.algorithm } : {}),
    }));
}

/**
 * Files up to this size are read whole, hashed one-shot, and their bytes
 * handed to the caller (`keep` of verifyChecksums): the restore decodes the
 * very bytes it checked, with no second open and read (600 small images
 * in a 100-process dump), and no Hash object per file.
 */
const KEEP_BYTES = BigInt(256 << 10);

/** The bytes of the file at `path`, expected to be `expected` long (one byte more is read to see a longer file), and its size. */
function readWhole(path: string, expected: number): { bytes: Buffer; size: bigint } {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(expected + 1);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n <= 0) break;
      got += n;
    }
    // Longer than the dump wrote: its size says so (the bytes read are not all of it).
    if (got > expected) return { bytes: buf, size: BigInt(fstatSync(fd).size) };
    return { bytes: buf.subarray(0, got), size: BigInt(got) };
  } finally {
    closeSync(fd);
  }
}

/**
 * 64 KiB, a SHA-256 file's block (block-hash.ts): files of 4 MiB and more
 * are vmh256 ones, read into the hash module's scratch, so this reads
 * small ones. A 1 MiB buffer was a fresh mapping whose 256 pages a 1 MiB
 * restore's check touched first, about 3 ms of CPU on a VM where a first
 * touch costs 13 us, against 18 reads into the same 16 pages
 * (docs/performance.md, "1 MiB through the CLI, session 15").
 */
const CHUNK = 64 << 10;
/** One read buffer for every file checked: a restore of 1000 threads checks 1000 core images. */
let readBuf: Buffer | undefined;

/** The digest by `algorithm` and the size of the file at `path`, read in chunks. */
function digestOf(path: string, algorithm: string | undefined): Digest {
  const fd = openSync(path, 'r');
  try {
    const hash = streamWith(algorithm);
    readBuf ??= Buffer.allocUnsafe(CHUNK);
    const buf = readBuf;
    let size = 0n;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n <= 0) break;
      hash.update(buf.subarray(0, n));
      size += BigInt(n);
    }
    if (BigInt(fstatSync(fd).size) !== size) throw new Error('changed while read');
    return { size, sha256: hash.digest(), ...(algorithm !== undefined ? { algorithm } : {}) };
  } finally {
    closeSync(fd);
  }
}

/** File ranges [start, end) whose blocks need no check now: a lazy-pages daemon checks them as it serves them. */
export type LaterRanges = readonly { start: bigint; end: bigint }[];
/** Byte ranges [start, end) of a file. */
export type ByteRanges = readonly { start: bigint; end: bigint }[];

/** The ranges `criu-ts dedup` punched out of a file (its entry's `freed`), in file order. */
export function freedRanges(e: CriuTsChecksumEntry): { start: bigint; end: bigint }[] {
  const b = e.freed;
  const out: { start: bigint; end: bigint }[] = [];
  if (b === undefined) return out;
  for (let i = 0; i + 16 <= b.length; i += 16) {
    const start = b.readBigUInt64LE(i);
    out.push({ start, end: start + b.readBigUInt64LE(i + 8) });
  }
  return out;
}

export function encodeFreed(ranges: ByteRanges): Buffer {
  const b = Buffer.alloc(ranges.length * 16);
  ranges.forEach((r, i) => {
    b.writeBigUInt64LE(r.start, i * 16);
    b.writeBigUInt64LE(r.end - r.start, i * 16 + 8);
  });
  return b;
}

/** EIMAGE when any of `want` (all of the file when undefined) lies in bytes a dedup freed. */
export function refuseFreed(path: string, e: CriuTsChecksumEntry, want?: ByteRanges): void {
  for (const f of freedRanges(e)) {
    if (want !== undefined && !want.some((w) => w.start < f.end && f.start < w.end)) continue;
    throw new CriuTsError('EIMAGE', `${path}: bytes ${f.start}..${f.end} were freed by \`criu-ts dedup\` of a later dump of this chain: only that dump restores now`, { file: path, field: 'freed', offset: Number(f.start) });
  }
}

/**
 * Check every file listed in `entries` (from criu-ts-checksums in `dir`).
 * Throws EIMAGE naming the first file that is missing, of another size, or
 * whose digest differs. `later(name)`: for a file with block digests, the
 * ranges left to the lazy-pages daemon; blocks wholly inside them are not
 * read here. `only(name)`: the ranges of that file a restore reads (a
 * parent's pages file, of which a later dump reads some pages); only the
 * blocks they touch are checked. A read of bytes a dedup freed is refused.
 * `keep`: gets the checked bytes of each small file (KEEP_BYTES), by name.
 */
export function verifyChecksums(
  dir: string, entries: readonly CriuTsChecksumEntry[], later?: (name: string) => LaterRanges | undefined, only?: (name: string) => ByteRanges | undefined,
  keep?: Map<string, Buffer>,
): void {
  for (const e of entries) {
    if (e.name.includes('/') || e.name === '' || e.name === '.' || e.name === '..') {
      throw new CriuTsError('EIMAGE', `${CHECKSUMS_IMAGE}: bad file name ${JSON.stringify(e.name)}`, { file: CHECKSUMS_IMAGE });
    }
    const path = join(dir, e.name);
    const problem = algorithmProblem(e.algorithm);
    if (problem !== undefined) {
      throw new CriuTsError('EIMAGE', `${path}: cannot be checked: ${problem} (${CHECKSUMS_IMAGE}; --skip-checksums to restore anyway)`, { file: path, field: 'algorithm' });
    }
    const want = only?.(e.name);
    refuseFreed(path, e, want);
    if (hasBlockDigests(e)) {
      verifyBlocks(path, e, later?.(e.name) ?? [], want);
      continue;
    }
    let d: Digest;
    let bytes: Buffer | undefined;
    try {
      if (keep !== undefined && e.size <= KEEP_BYTES) {
        const whole = readWhole(path, Number(e.size));
        bytes = whole.bytes;
        d = { size: whole.size, sha256: digestWith(e.algorithm, bytes) };
      } else {
        d = digestOf(path, e.algorithm);
      }
    } catch (err) {
      throw new CriuTsError('ENOIMAGE', `${path}: listed in ${CHECKSUMS_IMAGE} but cannot be read: ${(err as Error).message}`, { file: path }, err);
    }
    if (d.size !== BigInt(e.size)) throw sizeDiffers(path, d.size, e);
    if (!d.sha256.equals(e.sha256)) {
      throw new CriuTsError('EIMAGE', `${path}: contents changed since the dump (${algorithmName(e)} differs from ${CHECKSUMS_IMAGE}; --skip-checksums to restore anyway)`, { file: path, field: 'sha256' });
    }
    if (bytes !== undefined) keep?.set(e.name, bytes);
  }
}

/** The algorithm of an entry as the error lines name it. */
function algorithmName(e: CriuTsChecksumEntry): string {
  return e.algorithm === undefined || e.algorithm === 'sha256' ? 'SHA-256' : e.algorithm;
}

function sizeDiffers(path: string, size: bigint, e: CriuTsChecksumEntry): CriuTsError {
  return new CriuTsError('EIMAGE', `${path}: size ${size}, the dump wrote ${e.size} (${CHECKSUMS_IMAGE}; --skip-checksums to restore anyway)`, { file: path, field: 'size' });
}

/** Layouts already checked (the digest over 512 KiB of block digests of a 1 GiB file is not redone per run checked). */
const layouts = new WeakMap<CriuTsChecksumEntry, { size: number; count: number }>();


/** The block size and the number of blocks of an entry with block digests; EIMAGE when they do not fit its size and digest. */
export function blockLayout(path: string, e: CriuTsChecksumEntry): { size: number; count: number } {
  const known = layouts.get(e);
  if (known !== undefined) return known;
  const size = e.block_size ?? 0;
  // Digests left in the file (checksums-lean.ts) are not digested as a whole here: each is compared with its block.
  const away = digestsInFile(e);
  const blocks = e.blocks ?? Buffer.alloc(0);
  const count = size > 0 ? Math.ceil(Number(e.size) / size) : -1;
  const whole = away === undefined ? digestWith(e.algorithm, blocks).equals(e.sha256) : true;
  if (size <= 0 || size % 4096 !== 0 || (away?.len ?? blocks.length) !== count * 32 || algorithmProblem(e.algorithm) !== undefined || !whole) {
    throw new CriuTsError('EIMAGE', `${CHECKSUMS_IMAGE}: the block digests of ${basename(path)} do not fit its size and digest`, { file: CHECKSUMS_IMAGE });
  }
  const layout = { size, count };
  layouts.set(e, layout);
  return layout;
}

/**
 * Compare `data`, the bytes of blocks first.. of `path` (whole blocks, the
 * file's last one possibly short), with their digests. EIMAGE names the
 * first block that differs.
 */
export function checkBlocks(path: string, e: CriuTsChecksumEntry, first: number, data: Uint8Array): void {
  const { size } = blockLayout(path, e);
  // Indexed from `first`: blocks[(i - first) * 32] is block i's.
  const blocks = blockDigests(e, first, Math.ceil(data.length / size));
  const batch = e.algorithm === VMH256 && size === VMH_BLOCK;
  for (let off = 0, i = first; off < data.length;) {
    if (batch && data.length - off >= size) {
      // Whole blocks: digested by the module in one call (where they are, when read into its scratch).
      const n = vmhBlockDigests(data.subarray(off), gotBuf(), 0);
      for (let k = 0; k < n; k++) {
        if (!(gotBuf().subarray(k * 32, k * 32 + 32)).equals(blocks.subarray((i - first + k) * 32, (i - first + k) * 32 + 32))) throw blockDiffers(path, e, i + k, size);
      }
      off += n * size;
      i += n;
      continue;
    }
    const d = digestWith(e.algorithm, data.subarray(off, Math.min(off + size, data.length)));
    if (!d.equals(blocks.subarray((i - first) * 32, (i - first) * 32 + 32))) throw blockDiffers(path, e, i, size);
    off += size;
    i++;
  }
}

/** Block digests of one batch (1024 blocks: 64 MiB). */
let got: Buffer | undefined;
function gotBuf(): Buffer {
  got ??= Buffer.allocUnsafe(32 * 1024);
  return got;
}

function blockDiffers(path: string, e: CriuTsChecksumEntry, i: number, size: number): CriuTsError {
  return new CriuTsError('EIMAGE', `${path}: contents changed since the dump at bytes ${i * size}..${i * size + size} (${algorithmName(e)} differs from ${CHECKSUMS_IMAGE}; --skip-checksums to restore anyway)`, { file: path, field: 'blocks', offset: i * size });
}

function verifyBlocks(path: string, e: CriuTsChecksumEntry, later: LaterRanges, only?: ByteRanges): void {
  const { size, count } = blockLayout(path, e);
  // `only`: the blocks those ranges touch; every block otherwise.
  let wanted: Uint8Array | undefined;
  if (only !== undefined) {
    wanted = new Uint8Array(count);
    for (const r of only) {
      if (r.end <= r.start) continue;
      wanted.fill(1, Number(r.start / BigInt(size)), Math.min(count, Number((r.end - 1n) / BigInt(size)) + 1));
    }
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new CriuTsError('ENOIMAGE', `${path}: listed in ${CHECKSUMS_IMAGE} but cannot be read: ${(err as Error).message}`, { file: path }, err);
  }
  try {
    const st = BigInt(fstatSync(fd).size);
    if (st !== BigInt(e.size)) throw sizeDiffers(path, st, e);
    // vmh256: read into the module's scratch, where the digests are made without a copy.
    const room = e.algorithm === VMH256 ? vmhScratch() : undefined;
    // At least one whole block of this file (an image may name blocks bigger than CHUNK).
    if (room === undefined && (readBuf === undefined || readBuf.length < size)) readBuf = Buffer.allocUnsafe(Math.max(CHUNK, size));
    const whole = room ?? (readBuf as Buffer);
    const buf = whole.subarray(0, Math.floor(whole.length / size) * size);
    // Blocks are asked in increasing order: walk the sorted ranges once.
    const ranges = [...later].sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
    let k = 0;
    const bsize = BigInt(size);
    // Block i left for later: 0 when it is to be checked now, else the first
    // block after it that may not be (a lazy range covers many blocks: a
    // 1 GiB one is skipped in one step, not 16,384).
    const laterUntil = (i: number): number => {
      if (wanted !== undefined && wanted[i] !== 1) return i + 1;
      const a = BigInt(i * size);
      const b = BigInt(Math.min((i + 1) * size, Number(e.size)));
      while (k < ranges.length && (ranges[k] as { end: bigint }).end <= a) k++;
      for (let j = k; j < ranges.length && (ranges[j] as { start: bigint }).start <= a; j++) {
        const end = (ranges[j] as { end: bigint }).end;
        if (end >= b) return end >= BigInt(e.size) ? count : Math.max(i + 1, Number(end / bsize));
      }
      return 0;
    };
    const isLater = (i: number): boolean => laterUntil(i) !== 0;
    for (let i = 0; i < count;) {
      const skip = laterUntil(i);
      if (skip !== 0) {
        i = skip;
        continue;
      }
      // A run of blocks to check, read in one go.
      let n = 1;
      while (i + n < count && (n + 1) * size <= buf.length && !isLater(i + n)) n++;
      const want = Math.min(n * size, Number(e.size) - i * size);
      let got = 0;
      while (got < want) {
        const r = readSync(fd, buf, got, want - got, i * size + got);
        if (r <= 0) throw sizeDiffers(path, BigInt(i * size + got), e);
        got += r;
      }
      checkBlocks(path, e, i, buf.subarray(0, want));
      i += n;
    }
  } finally {
    closeSync(fd);
  }
}
