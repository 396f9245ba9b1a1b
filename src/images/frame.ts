/**
 * Image framing: header magics, then entries of u32 length + protobuf, each
 * possibly followed by a raw payload (table.ts says how long). Works over a
 * ByteSource so the same code serves whole buffers and streamed files.
 */
import { isCriuTsError } from '../errors.js';
import { decodeMessageRaw } from './codec.js';
import type { Message } from './codec.js';
import { IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, entryMessage, kindByFileName, kindByMagic, magicShared } from './table.js';
import type { ImageKind } from './table.js';
import { WireError, imageError } from './wire.js';
import type { LazyFields } from './lazy-fields.js';

/** Sequential bytes with a known total size (so lengths are checked before any allocation). */
export interface ByteSource {
  readonly size: number;
  readonly pos: number;
  /** exactly n bytes; callers check n <= size - pos first */
  read(n: number): Buffer;
  /** the next 4 bytes as a little-endian u32 (no Buffer made: an image has thousands of entries) */
  u32(): number;
  /** the next n bytes, left in `buffer` from the offset returned (checked as for read) */
  view(n: number): number;
  /** what view() last left its bytes in */
  readonly buffer: Buffer;
}

export class BufferSource implements ByteSource {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  get size(): number {
    return this.buf.length;
  }
  read(n: number): Buffer {
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  view(n: number): number {
    const at = this.pos;
    this.pos += n;
    return at;
  }
  get buffer(): Buffer {
    return this.buf;
  }
}

export interface Frame {
  /** index of the entry in the image */
  index: number;
  /** byte offset of the entry's length word */
  offset: number;
  entry: Message;
  /** raw bytes after the entry, when the image kind has them */
  extra: Buffer | undefined;
}

export interface ImageHead {
  kind: ImageKind;
  /** bytes of header (4 or 8) */
  headerSize: number;
}

function u32(b: Buffer): number {
  return b.readUInt32LE(0);
}

function need(src: ByteSource, n: number, file: string | undefined, what: string): void {
  const have = src.size - src.pos;
  if (n > have) throw imageError(file, src.pos, `truncated ${what} at byte ${src.pos} (need ${n} bytes, have ${have})`);
}

/** Read the header magics and find the image kind. */
export function readHead(src: ByteSource, file: string | undefined): ImageHead {
  if (src.size - src.pos < 4) {
    throw imageError(file, src.pos, `too short for an image magic (${src.size} bytes)`);
  }
  let magic = u32(src.read(4));
  let headerSize = 4;
  if (magic === IMG_COMMON_MAGIC || magic === IMG_SERVICE_MAGIC) {
    need(src, 4, file, 'image magic');
    magic = u32(src.read(4));
    headerSize = 8;
  }
  let kind = kindByMagic(magic);
  if (kind === undefined) {
    const byName = file === undefined ? undefined : kindByFileName(file);
    if (byName?.header === 'raw') {
      throw imageError(file, 0, `${byName.name} is a raw image (no magic), not decodable`, { magic });
    }
    throw imageError(file, headerSize - 4, `unknown magic 0x${magic.toString(16)} at byte ${headerSize - 4} (a raw image such as pages-*.img?)`, { magic });
  }
  // pagemap-shmem shares PAGEMAP's magic; keep the kind the file name says when it agrees.
  const named = file === undefined || !magicShared(kind.magic) ? undefined : kindByFileName(file);
  if (named !== undefined && named.magic === kind.magic && named.header !== 'raw') kind = named;
  return { kind, headerSize };
}

/** Decode buf[start, end), whose first byte is at `offset` of the file (errors name file offsets). */
function decodeIn(msgName: string, buf: Buffer, start: number, end: number, offset: number, index: number, file: string | undefined, lazy?: LazyFields): Message {
  try {
    return decodeMessageRaw(msgName, buf, start, end, lazy);
  } catch (e) {
    if (e instanceof WireError) {
      const at = offset + e.pos - start;
      throw imageError(file, at, `bad ${msgName} (entry ${index}) at byte ${at}: ${e.message}`, { entry: index });
    }
    if (isCriuTsError(e) && e.code === 'EINTERNAL') {
      throw imageError(file, offset, `cannot decode ${msgName}: ${e.message}`, { entry: index });
    }
    throw e;
  }
}

function lengthField(entry: Message, field: string, offset: number, file: string | undefined): number {
  const v = entry[field];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  if (v === undefined) return 0;
  throw imageError(file, offset, `payload length ${String(v)} is too large`);
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Length of the payload after `entry` (ipc-msg walks nested frames; ghost is handled by the caller). */
function payloadLength(kind: ImageKind, entry: Message, src: ByteSource, file: string | undefined, index: number): Buffer | undefined {
  const rule = kind.payload;
  if (rule === undefined) return undefined;
  const at = src.pos;
  let n: number;
  switch (rule.kind) {
    case 'field': n = lengthField(entry, rule.field, at, file); break;
    case 'sum': n = rule.fields.reduce((s, fld) => s + lengthField(entry, fld, at, file), 0); break;
    case 'ipc-sem': n = roundUp(2 * lengthField(entry, 'nsems', at, file), 8); break;
    case 'ipc-shm':
      // CRIU 4.x keeps the contents in pagemap-shmem-<id>.img then (in_pagemaps): no payload here.
      if (entry['in_pagemaps'] === true) return undefined;
      n = roundUp(lengthField(entry, 'size', at, file), 4);
      break;
    case 'ipc-msg': return readMsgQueue(entry, src, file, index);
    case 'ghost': return undefined;
  }
  need(src, n, file, `payload of entry ${index}`);
  return Buffer.from(src.read(n));
}

/** The raw region of a SysV message queue: each message is u32 size, ipc_msg, data padded to 8. */
function readMsgQueue(entry: Message, src: ByteSource, file: string | undefined, index: number): Buffer {
  const qnum = lengthField(entry, 'qnum', src.pos, file);
  const parts: Buffer[] = [];
  for (let i = 0; i < qnum && src.pos < src.size; i++) {
    need(src, 4, file, `message size word of entry ${index}`);
    const sizeWord = Buffer.from(src.read(4));
    const size = u32(sizeWord);
    need(src, size, file, `queued message of entry ${index}`);
    const off = src.pos;
    const body = Buffer.from(src.read(size));
    const msg = decodeIn('ipc_msg', body, 0, body.length, off, index, file);
    const data = roundUp(lengthField(msg, 'msize', off, file), 8);
    need(src, data, file, `queued message data of entry ${index}`);
    parts.push(sizeWord, body, Buffer.from(src.read(data)));
  }
  return Buffer.concat(parts);
}

/** Every entry of an image after its header. */
export function* frames(src: ByteSource, kind: ImageKind, file: string | undefined, lazy?: LazyFields): Generator<Frame> {
  if (kind.message === undefined) throw imageError(file, 0, `${kind.name} images are not protobuf`);
  const ghost = kind.payload?.kind === 'ghost';
  let chunked = false;
  for (let index = 0; src.pos < src.size; index++) {
    const offset = src.pos;
    need(src, 4, file, 'entry size');
    const size = src.u32();
    const have = src.size - src.pos;
    if (size > have) {
      throw imageError(file, offset, `truncated entry at byte ${offset} (need ${size} bytes, have ${have})`, { entry: index });
    }
    const msgName = entryMessage(kind, index);
    const at = src.view(size);
    const entry = decodeIn(msgName, src.buffer, at, at + size, offset + 4, index, file, lazy);
    let extra: Buffer | undefined;
    if (ghost) {
      if (index === 0) chunked = entry['chunks'] === true;
      if (index > 0 || !chunked) {
        const n = index === 0 ? src.size - src.pos : lengthField(entry, 'len', src.pos, file);
        need(src, n, file, `ghost file data of entry ${index}`);
        extra = Buffer.from(src.read(n));
      }
    } else {
      extra = payloadLength(kind, entry, src, file, index);
    }
    yield { index, offset, entry, extra };
  }
}
