/**
 * Asynchronous file writes through one small io_uring, so that a
 * synchronous loop can have the kernel write one buffer while it works on
 * another (the pages writer hashes a chunk while the kernel writes it).
 * The write runs on one of io_uring's kernel workers (IOSQE_ASYNC): no
 * thread or isolate of ours, no memory beyond the caller's buffers.
 *
 * The rings live in memory we allocate (IORING_SETUP_NO_MMAP, Linux 6.5):
 * they are read and written as a plain Buffer, no mapping to track. Where
 * io_uring cannot be set up (older kernel, io_uring_disabled, a seccomp
 * filter), `Uring.shared()` is null and callers write synchronously.
 *
 * Layouts (include/uapi/linux/io_uring.h): io_uring_params is 120 bytes,
 * its sq_off at 40 and cq_off at 80; an SQE is 64 bytes, a CQE 16.
 */
import { writeSync } from 'node:fs';
import { addr, sysTry } from './libc.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';
import { EINTR } from './errno.js';
import { PAGE_SIZE } from './arch-x86.js';

const ENTRIES = 4;
const IORING_SETUP_CQSIZE = 1 << 3;
const IORING_SETUP_NO_MMAP = 1 << 14;
const IORING_ENTER_GETEVENTS = 1;
const IORING_OP_WRITE = 23;
/** always punt to a kernel worker: an inline attempt would make the submit itself write */
const IOSQE_ASYNC = 1 << 4;

/** A write in flight: what wait() needs to finish it. */
export interface UringWrite {
  readonly id: number;
  readonly fd: number;
  readonly buf: Buffer;
  readonly off: number;
  readonly len: number;
  readonly pos: number;
}

export class Uring {
  private static instance: Uring | null | undefined;

  /** The process's ring, set up on first use; null where io_uring is unavailable. */
  static shared(): Uring | null {
    if (Uring.instance === undefined) Uring.instance = Uring.setup();
    return Uring.instance;
  }

  private static setup(): Uring | null {
    // One page for the rings, one for the SQEs, each page-aligned, kept alive with the ring (the kernel pins them).
    const mem = Buffer.alloc(3 * PAGE_SIZE);
    const base = addr(mem);
    const skew = Number((BigInt(PAGE_SIZE) - (base & BigInt(PAGE_SIZE - 1))) & BigInt(PAGE_SIZE - 1));
    const rings = skew;
    const sqes = skew + PAGE_SIZE;
    const p = Buffer.alloc(120);
    p.writeUInt32LE(ENTRIES, 0);
    p.writeUInt32LE(ENTRIES * 2, 4);
    p.writeUInt32LE(IORING_SETUP_NO_MMAP | IORING_SETUP_CQSIZE, 8);
    p.writeBigUInt64LE(base + BigInt(sqes), 40 + 32);
    p.writeBigUInt64LE(base + BigInt(rings), 80 + 32);
    const fd = sysTry(NR.io_uring_setup, ENTRIES, addr(p));
    if (fd < 0) return null;
    const u32 = (o: number): number => p.readUInt32LE(o);
    const sqEntries = u32(0);
    const cqEntries = u32(4);
    // Both rings share the one region: all offsets are from its start.
    const need = Math.max(rings + u32(80 + 20) + cqEntries * 16, rings + u32(40 + 24) + sqEntries * 4);
    if (need > rings + PAGE_SIZE || sqEntries * 64 > PAGE_SIZE) return null; // not the layout asked for: not ours to guess
    return new Uring(fd, mem, rings, sqes, {
      sqHead: u32(40), sqTail: u32(40 + 4), sqMask: u32(40 + 8), sqArray: u32(40 + 24),
      cqHead: u32(80), cqTail: u32(80 + 4), cqMask: u32(80 + 8), cqes: u32(80 + 20),
    });
  }

  /** ring words (head, tail) as 32-bit cells shared with the kernel */
  private readonly words: Uint32Array;
  private nextId = 1;
  private inFlight = 0;
  /** completions reaped while waiting for another write: id -> res */
  private readonly done = new Map<number, number>();

  private constructor(
    private readonly fd: number,
    private readonly mem: Buffer,
    private readonly rings: number,
    private readonly sqes: number,
    private readonly off: {
      sqHead: number; sqTail: number; sqMask: number; sqArray: number;
      cqHead: number; cqTail: number; cqMask: number; cqes: number;
    },
  ) {
    this.words = new Uint32Array(mem.buffer, mem.byteOffset, mem.length >> 2);
  }

  private word(ringOff: number): number {
    return (this.rings + ringOff) >> 2;
  }

  /**
   * Start writing `len` bytes of `buf` from `off` at file position `pos`.
   * Leave those bytes alone (reading them is fine) until wait() returns.
   */
  write(fd: number, buf: Buffer, off: number, len: number, pos: number): UringWrite {
    // Writes a failed caller never waited for still hold a slot until they complete.
    while (this.inFlight >= ENTRIES) this.waitAny();
    const w: UringWrite = { id: this.nextId++, fd, buf, off, len, pos };
    const o = this.off;
    const tail = Atomics.load(this.words, this.word(o.sqTail));
    const idx = tail & this.words[this.word(o.sqMask)]!;
    const s = this.sqes + idx * 64;
    this.mem.fill(0, s, s + 64);
    this.mem.writeUInt8(IORING_OP_WRITE, s);
    this.mem.writeUInt8(IOSQE_ASYNC, s + 1);
    this.mem.writeInt32LE(fd, s + 4);
    this.mem.writeBigUInt64LE(BigInt(pos), s + 8);
    this.mem.writeBigUInt64LE(addr(buf) + BigInt(off), s + 16);
    this.mem.writeUInt32LE(len, s + 24);
    this.mem.writeBigUInt64LE(BigInt(w.id), s + 32);
    this.words[this.word(o.sqArray) + idx] = idx;
    Atomics.store(this.words, this.word(o.sqTail), (tail + 1) >>> 0);
    for (;;) {
      const r = sysTry(NR.io_uring_enter, this.fd, 1, 0, 0, 0, 0);
      if (r === 1) break;
      if (r === -EINTR || r === 0) continue;
      throw new SyscallError('io_uring_enter', -r, undefined, 'submit');
    }
    this.inFlight++;
    return w;
  }

  /** Wait for `w` to be written in full; throws its error. */
  wait(w: UringWrite): void {
    let res = this.take(w.id);
    while (res === undefined) {
      this.waitAny();
      res = this.take(w.id);
    }
    if (res < 0) throw new SyscallError('write', -res, undefined, `(io_uring, fd ${w.fd})`);
    // A short write (disk full shows as the error of the rest): finish it here.
    let done = res;
    while (done < w.len) done += writeSync(w.fd, w.buf, w.off + done, w.len - done, w.pos + done);
  }

  private waitAny(): void {
    const r = sysTry(NR.io_uring_enter, this.fd, 0, 1, IORING_ENTER_GETEVENTS, 0, 0);
    if (r < 0 && r !== -EINTR) throw new SyscallError('io_uring_enter', -r, undefined, 'wait');
    this.take(0);
  }

  /** Reap every completion; the result for `id` if it is among them (or was reaped before). */
  private take(id: number): number | undefined {
    const o = this.off;
    const hw = this.word(o.cqHead);
    let head = Atomics.load(this.words, hw);
    const tail = Atomics.load(this.words, this.word(o.cqTail));
    const mask = this.words[this.word(o.cqMask)]!;
    while (head !== tail) {
      const c = this.rings + o.cqes + (head & mask) * 16;
      this.done.set(Number(this.mem.readBigUInt64LE(c)), this.mem.readInt32LE(c + 8));
      this.inFlight--;
      head = (head + 1) >>> 0;
    }
    Atomics.store(this.words, hw, head);
    const res = this.done.get(id);
    if (res !== undefined) this.done.delete(id);
    return res;
  }
}
