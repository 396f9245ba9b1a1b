/**
 * Protobuf wire primitives: a bounds-checked reader and a growable writer.
 * Every read checks the remaining length first, so a corrupt length can
 * never make us allocate or copy more than the input holds.
 */
import { CriuTsError } from '../errors.js';

export const WT_VARINT = 0;
export const WT_FIXED64 = 1;
export const WT_LEN = 2;
export const WT_START_GROUP = 3;
export const WT_END_GROUP = 4;
export const WT_FIXED32 = 5;

/** The largest uint32 and the first value past uint64: the range checks of every encoder. */
export const U32_MAX = 0xffffffff;
export const U64_LIMIT = 1n << 64n;

/** Thrown by the reader; the framing layer adds file name and absolute offset. */
export class WireError extends Error {
  constructor(message: string, readonly pos: number) {
    super(message);
    this.name = 'WireError';
  }
}

/** The bigints of one-byte varints (0-127), made once. */
const SMALL_BIGINTS: readonly bigint[] = Array.from({ length: 128 }, (_, i) => BigInt(i));

export class WireReader {
  pos: number;

  constructor(readonly buf: Buffer, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** The halves of the last varint read by `varint()` (fields, not a returned pair: no array per value). */
  private lo = 0;
  private hi = 0;

  /** Read a varint into `lo`/`hi` (two 32-bit halves); protobuf allows at most 10 bytes. */
  private varint(): void {
    let lo = 0;
    let hi = 0;
    const buf = this.buf;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint', start);
      const b = buf[this.pos++] as number;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    throw new WireError('varint longer than 10 bytes', start);
  }

  /** Low 32 bits of a varint as an unsigned number (fast path for tags and lengths). */
  uint32(): number {
    const buf = this.buf;
    if (this.pos < this.end) {
      const b = buf[this.pos] as number;
      if (b < 0x80) {
        this.pos++;
        return b;
      }
    }
    this.varint();
    return this.lo;
  }

  int32(): number {
    this.varint();
    return this.lo | 0;
  }

  sint32(): number {
    this.varint();
    const v = this.lo;
    return (v >>> 1) ^ -(v & 1);
  }

  /**
   * One bigint per value: a one-byte varint from a table, a value below
   * 2^53 from one number (most of a thread core's register words), only
   * the rest from its two halves.
   */
  uint64(): bigint {
    if (this.pos < this.end) {
      const b = this.buf[this.pos] as number;
      if (b < 0x80) {
        this.pos++;
        return SMALL_BIGINTS[b] as bigint;
      }
    }
    this.varint();
    const { lo, hi } = this;
    return hi < 0x200000 ? BigInt(hi * 0x100000000 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
  }

  int64(): bigint {
    return BigInt.asIntN(64, this.uint64());
  }

  sint64(): bigint {
    const v = this.uint64();
    return (v >> 1n) ^ -(v & 1n);
  }

  bool(): boolean {
    this.varint();
    return this.lo !== 0 || this.hi !== 0;
  }

  private need(n: number): void {
    if (n > this.end - this.pos) {
      throw new WireError(`truncated field (need ${n} bytes, have ${this.end - this.pos})`, this.pos);
    }
  }

  fixed32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  sfixed32(): number {
    this.need(4);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  float(): number {
    this.need(4);
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }

  fixed64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  sfixed64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Length of a length-delimited field, checked against what is left. */
  length(): number {
    const start = this.pos;
    this.varint();
    const { lo, hi } = this;
    if (hi !== 0 || lo > this.end - this.pos) {
      const want = hi !== 0 ? 'more than 4 GiB' : `${lo} bytes`;
      throw new WireError(`length-delimited field too long (need ${want}, have ${this.end - this.pos})`, start);
    }
    return lo;
  }

  /** A view (no copy) of the next n bytes. */
  view(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Skip a field of the given wire type (unknown fields). */
  skip(wt: number, fieldNum: number, depth = 0): void {
    switch (wt) {
      case WT_VARINT: this.varint(); return;
      case WT_FIXED64: this.need(8); this.pos += 8; return;
      case WT_FIXED32: this.need(4); this.pos += 4; return;
      case WT_LEN: { const n = this.length(); this.pos += n; return; }
      case WT_START_GROUP: {
        if (depth > 64) throw new WireError('groups nested too deep', this.pos);
        for (;;) {
          if (this.pos >= this.end) throw new WireError('unterminated group', this.pos);
          const tag = this.uint32();
          const t = tag & 7;
          if (t === WT_END_GROUP) {
            if (tag >>> 3 !== fieldNum) throw new WireError('mismatched end group', this.pos);
            return;
          }
          this.skip(t, tag >>> 3, depth + 1);
        }
      }
      default:
        throw new WireError(`invalid wire type ${wt}`, this.pos);
    }
  }
}

export class WireWriter {
  private buf: Buffer;
  pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    // Doubling, but a big write (a 2 MiB bytes field) gets what it needs and
    // a little more, not twice that: finish() then need not copy it.
    let size = this.buf.length * 2;
    if (size < this.pos + n) size = this.pos + n + (this.pos + n >> 6) + 64;
    const nb = Buffer.allocUnsafe(size);
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }

  /** Unsigned varint of a non-negative safe integer. */
  varint(v: number): void {
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /**
   * Unsigned varint of a 64-bit value given as bigint (two's complement for
   * negatives). Beyond 2^53 the value is cut into two 32-bit numbers once,
   * not shifted as a bigint per byte: a thread core's AVX-512 registers are
   * hundreds of such values, and each bigint step allocated.
   */
  varint64(v: bigint): void {
    const u = BigInt.asUintN(64, v);
    if (u <= 0x1fffffffffffffn) {
      this.varint(Number(u));
      return;
    }
    this.ensure(10);
    let lo = Number(u & 0xffffffffn);
    let hi = Number(u >> 32n);
    // Four 7-bit groups come from lo alone, the fifth straddles both words.
    for (let i = 0; i < 4; i++) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    // lo has 4 bits left; hi is non-zero here (u > 2^53), so more bytes follow.
    let rest = lo | ((hi & 0x7) << 4);
    hi >>>= 3;
    while (hi !== 0) {
      this.buf[this.pos++] = rest | 0x80;
      rest = hi & 0x7f;
      hi >>>= 7;
    }
    this.buf[this.pos++] = rest;
  }

  tag(num: number, wt: number): void {
    this.varint(num * 8 + wt);
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.raw(b);
  }

  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  u32le(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  i32le(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.pos);
    this.pos += 4;
  }

  f32le(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }

  u64le(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
  }

  f64le(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Overwrite 4 bytes already written at `at` (an image entry's length, known once its message is written). */
  u32leAt(at: number, v: number): void {
    this.buf.writeUInt32LE(v >>> 0, at);
  }

  /** Reserve space for a length prefix later patched by `endLen`. */
  beginLen(): number {
    // Messages in CRIU images are small; reserve one byte and move the body if needed.
    this.ensure(1);
    this.pos++;
    return this.pos;
  }

  endLen(start: number): void {
    const len = this.pos - start;
    let n = 1;
    for (let v = len; v >= 0x80; v = Math.floor(v / 0x80)) n++;
    if (n > 1) {
      this.ensure(n - 1);
      this.buf.copy(this.buf, start + n - 1, start, this.pos);
      this.pos += n - 1;
    }
    let p = start - 1;
    let v = len;
    while (v >= 0x80) {
      this.buf[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[p] = v;
  }

  /** The bytes written: a copy, unless the buffer is nearly full (a big message is not copied again). */
  finish(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    return this.pos >= 64 << 10 && this.buf.length - this.pos <= this.buf.length >> 5 ? out : Buffer.from(out);
  }
}

export function imageError(file: string | undefined, offset: number, what: string, data: Record<string, unknown> = {}): CriuTsError {
  const name = file ?? '<image>';
  return new CriuTsError('EIMAGE', `${name}: ${what}`, { file: name, offset, ...data });
}
