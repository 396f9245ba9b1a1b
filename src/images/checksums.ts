/**
 * Checksums of a dump (beyond CRIU; docs/security.md): every file the dump
 * writes into the images dir is hashed (SHA-256) as it is written, with no
 * second read: small images from the bytes we encode, pages files as they
 * stream out (while the kernel writes them: kinds/memory/pages-writer.ts). At the end the digests go to `criu-ts-checksums`, an image
 * CRIU never reads. A restore checks every listed file before it creates
 * anything and refuses a file whose size or digest differ, naming it.
 *
 * Digests are recorded only for directories a dump has opened with
 * `beginChecksums`; other writers (crit-ts, tests) are unaffected.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import type { CriuTsChecksumEntry } from './messages.js';
import { imageFile } from './table.js';

export const CHECKSUMS_IMAGE = imageFile('CRIU_TS_CHECKSUMS');

interface Digest {
  size: bigint;
  sha256: Buffer;
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
 * the caller's bytes: no copy, nothing on the JS heap.
 */
export class FileHasher {
  private readonly hash: Hash | undefined;
  private size = 0n;
  private readonly collector: Collector | undefined;

  constructor(private readonly path: string) {
    this.collector = collectors.get(resolve(dirname(path)));
    this.hash = this.collector === undefined ? undefined : createHash('sha256');
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
    const sha256 = this.hash.digest();
    this.collector.hashNs += process.hrtime.bigint() - t0;
    this.collector.files.set(basename(this.path), { size: this.size, sha256 });
  }
}

/** Record the digest of a whole file written at once. */
export function noteWritten(path: string, data: Uint8Array): void {
  const h = new FileHasher(path);
  h.update(data);
  h.done();
}

/** The entries for criu-ts-checksums, by name. */
export function checksumEntries(dir: string): CriuTsChecksumEntry[] {
  const c = collectors.get(resolve(dir));
  if (c === undefined) return [];
  return [...c.files.entries()]
    .filter(([name]) => name !== CHECKSUMS_IMAGE)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, d]) => ({ name, size: d.size, sha256: d.sha256 }));
}

const CHUNK = 1 << 20;
/** One read buffer for every file checked: a restore of 1000 threads checks 1000 core images. */
let readBuf: Buffer | undefined;

/** SHA-256 and size of the file at `path`, read in chunks. */
function digestOf(path: string): Digest {
  const fd = openSync(path, 'r');
  try {
    const hash = createHash('sha256');
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
    return { size, sha256: hash.digest() };
  } finally {
    closeSync(fd);
  }
}

/**
 * Check every file listed in `entries` (from criu-ts-checksums in `dir`).
 * Throws EIMAGE naming the first file that is missing, of another size, or
 * whose digest differs.
 */
export function verifyChecksums(dir: string, entries: readonly CriuTsChecksumEntry[]): void {
  for (const e of entries) {
    if (e.name.includes('/') || e.name === '' || e.name === '.' || e.name === '..') {
      throw new CriuTsError('EIMAGE', `${CHECKSUMS_IMAGE}: bad file name ${JSON.stringify(e.name)}`, { file: CHECKSUMS_IMAGE });
    }
    const path = join(dir, e.name);
    let d: Digest;
    try {
      d = digestOf(path);
    } catch (err) {
      throw new CriuTsError('ENOIMAGE', `${path}: listed in ${CHECKSUMS_IMAGE} but cannot be read: ${(err as Error).message}`, { file: path }, err);
    }
    if (d.size !== BigInt(e.size)) {
      throw new CriuTsError('EIMAGE', `${path}: size ${d.size}, the dump wrote ${e.size} (${CHECKSUMS_IMAGE}; --skip-checksums to restore anyway)`, { file: path, field: 'size' });
    }
    if (!d.sha256.equals(e.sha256)) {
      throw new CriuTsError('EIMAGE', `${path}: contents changed since the dump (SHA-256 differs from ${CHECKSUMS_IMAGE}; --skip-checksums to restore anyway)`, { file: path, field: 'sha256' });
    }
  }
}
