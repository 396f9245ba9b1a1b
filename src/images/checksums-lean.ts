/**
 * criu-ts-checksums read without its block digests, for a lazy restore:
 * a pages file's digests are 32 bytes per 64 KiB block (512 KiB for
 * 1 GiB), all read, copied out by the decode and digested as a whole
 * before the task existed (3.5-4 ms of CPU per GiB here, most of it the
 * page faults of two fresh half-megabyte buffers), while the restore
 * checks only the few blocks it reads itself: the lazy-pages daemon,
 * which serves and checks the rest, reads them all and checks the whole.
 * The field is passed over where it lies in the file, and each digest the
 * restore compares is read from there (blockDigests, for checksums.ts).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { decodeMessageRaw } from './codec.js';
import { BufferSource, readHead } from './frame.js';
import { join } from 'node:path';
import { imageFile, kindByKey } from './table.js';
import { WireError } from './wire.js';
import type { CriuTsChecksumEntry } from './messages.js';

/** Entries up to this size are read and decoded whole (every file's but a pages file's with block digests). */
const WHOLE_MAX = 16 << 10;
/** Bytes read at once from the file's start (a dump of a few processes lists its files in 2-3 KiB). */
const FIRST_READ = 16 << 10;
/** criu_ts_checksum_entry's `blocks`. */
const BLOCKS_FIELD = 5;
const MESSAGE = 'criu_ts_checksum_entry';
/** Its name (checksums.ts's CHECKSUMS_IMAGE: not imported, as checksums.ts imports this file). */
const CHECKSUMS_FILE = imageFile('CRIU_TS_CHECKSUMS');

/**
 * Entries whose block digests were left in criu-ts-checksums: where they
 * lie there. Each digest used is read from there; the digest over them
 * all is not checked by the restore (it would read them all): each is
 * compared with its block's bytes, so a damaged one fails that compare,
 * and the lazy-pages daemon, which reads them all, checks the whole.
 */
const inFile = new WeakMap<CriuTsChecksumEntry, { path: string; off: number; len: number }>();

/** Where the entry's block digests lie in criu-ts-checksums, when they were left there. */
export function digestsInFile(e: CriuTsChecksumEntry): { path: string; off: number; len: number } | undefined {
  return inFile.get(e);
}

/** Whether the entry has block digests (in it, or left in the file). */
export function hasBlockDigests(e: CriuTsChecksumEntry): boolean {
  return e.blocks !== undefined || inFile.has(e);
}

/** The digests of blocks first..first+n-1 of an entry, back to back. */
export function blockDigests(e: CriuTsChecksumEntry, first: number, n: number): Buffer {
  const away = inFile.get(e);
  if (away === undefined) return (e.blocks as Buffer).subarray(first * 32, (first + n) * 32);
  const out = Buffer.allocUnsafe(n * 32);
  const fd = openSync(away.path, 'r');
  try {
    for (let got = 0; got < out.length;) {
      const r = readSync(fd, out, got, out.length - got, away.off + first * 32 + got);
      if (r <= 0) throw bad(away.path, away.off + first * 32 + got, `ends within the block digests of ${e.name}`);
      got += r;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The entries of criu-ts-checksums in `dir` (undefined when there is none), each entry's block digests left in the file. */
export function loadChecksumsLean(dir: string): { entries: CriuTsChecksumEntry[] } | undefined {
  const path = join(dir, CHECKSUMS_FILE);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CriuTsError('EIMAGE', `${path}: cannot open: ${(e as Error).message}`, { file: path, offset: 0 }, e);
  }
  try {
    const size = fstatSync(fd).size;
    // The file's first bytes in one read: every small entry, and the head of a big one, is there.
    let first: Buffer | undefined;
    const read = (at: number, n: number): Buffer => {
      if (n > size - at) throw bad(path, at, `truncated at byte ${at} (need ${n} bytes, have ${size - at})`);
      if (first !== undefined && at + n <= first.length) return first.subarray(at, at + n);
      const b = Buffer.allocUnsafe(n);
      for (let got = 0; got < n;) {
        const r = readSync(fd, b, got, n - got, at + got);
        if (r <= 0) throw bad(path, at + got, `ends at byte ${at + got} while read`);
        got += r;
      }
      return b;
    };
    first = read(0, Math.min(size, FIRST_READ));
    const head = readHead(new BufferSource(read(0, Math.min(8, size))), path);
    if (head.kind.magic !== kindByKey('CRIU_TS_CHECKSUMS').magic) throw bad(path, 4, `a ${head.kind.name} image, not ${CHECKSUMS_FILE}`);
    const entries: CriuTsChecksumEntry[] = [];
    for (let at = head.headerSize; at < size;) {
      const len = read(at, 4).readUInt32LE(0);
      const start = at + 4;
      if (len > size - start) throw bad(path, start, `truncated entry ${entries.length} at byte ${start} (need ${len} bytes, have ${size - start})`);
      if (len <= WHOLE_MAX) {
        entries.push(decode(path, read(start, len), start, entries.length));
      } else {
        const { kept, blocks } = withoutBlocks(path, read, start, start + len);
        const e = decode(path, kept, start, entries.length);
        if (blocks !== undefined) inFile.set(e, { path, off: blocks.off, len: blocks.len });
        entries.push(e);
      }
      at = start + len;
    }
    return { entries };
  } finally {
    closeSync(fd);
  }
}

/**
 * The wire bytes of the entry at [start, end) but for its `blocks` field,
 * whose bytes are not read: where they are. Every other field is read
 * field by field (its tag and length, then the whole field).
 */
function withoutBlocks(path: string, read: (at: number, n: number) => Buffer, start: number, end: number): { kept: Buffer; blocks?: { off: number; len: number } } {
  const parts: Buffer[] = [];
  let blocks: { off: number; len: number } | undefined;
  for (let at = start; at < end;) {
    // A tag and a length (or a varint value) take at most 20 bytes.
    const peek = read(at, Math.min(20, end - at));
    const tag = varintAt(peek, 0);
    if (tag === undefined) throw bad(path, at, `bad ${MESSAGE}: bad tag at byte ${at}`);
    const field = Math.floor(tag.value / 8);
    const wt = tag.value % 8;
    let total: number;
    if (wt === 0) total = varintAt(peek, tag.next)?.next ?? -1;
    else if (wt === 1) total = tag.next + 8;
    else if (wt === 5) total = tag.next + 4;
    else if (wt === 2) {
      const n = varintAt(peek, tag.next);
      if (n === undefined) throw bad(path, at, `bad ${MESSAGE}: bad length of field ${field} at byte ${at}`);
      total = n.next + n.value;
      if (field === BLOCKS_FIELD && total <= end - at) {
        blocks = { off: at + n.next, len: n.value };
        at += total;
        continue;
      }
    } else {
      throw bad(path, at, `bad ${MESSAGE}: wire type ${wt} at byte ${at}`);
    }
    if (total < 0 || total > end - at) throw bad(path, at, `bad ${MESSAGE}: field ${field} at byte ${at} runs past its entry`);
    parts.push(total <= peek.length ? peek.subarray(0, total) : read(at, total));
    at += total;
  }
  return { kept: Buffer.concat(parts), ...(blocks !== undefined ? { blocks } : {}) };
}

/** The varint at `pos` of `b` (up to 2^53) and the position after it; undefined when it does not end within `b` or is longer. */
function varintAt(b: Buffer, pos: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0; i < 8 && pos + i < b.length; i++) {
    const byte = b[pos + i] as number;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if (byte < 0x80) return { value, next: pos + i + 1 };
  }
  return undefined;
}

function decode(path: string, bytes: Buffer, offset: number, index: number): CriuTsChecksumEntry {
  try {
    return decodeMessageRaw(MESSAGE, bytes, 0, bytes.length) as unknown as CriuTsChecksumEntry;
  } catch (e) {
    if (e instanceof WireError) throw bad(path, offset, `bad ${MESSAGE} (entry ${index}): ${e.message}`);
    throw e;
  }
}

function bad(path: string, offset: number, what: string): CriuTsError {
  return new CriuTsError('EIMAGE', `${path}: ${what}`, { file: path, offset });
}
