/**
 * AIO rings (io_setup). Kernel object: a kioctx whose completion ring is
 * mapped into the task as "/[aio] (deleted)"; the context id the task uses
 * is the ring's address. CRIU's image: a VMA with status VMA_AREA_AIORING
 * (flags MAP_SHARED), every page of the ring in the task's pagemap, and an
 * aio_ring_entry in mm.aios (id = address, ring_len, nr_req).
 *
 * Restore, by injected syscalls: the ring's pages are first filled into a
 * plain anonymous mapping at its address (as any private memory); then
 * io_setup makes a new context of the same size (in the order of the
 * dumped contexts' kernel ids, so each gets its id again), /dev/null writes (which
 * complete at once) move its in-kernel tail to the dumped one while head
 * follows, the dumped events are copied in, and mremap puts the new ring
 * over the temporary one (the kernel moves the context id with it).
 *
 * Limits (as CRIU): requests still in flight at dump time are not seen by
 * anything we can read and are lost; a ring whose header is not sane is
 * refused. A restore fails if io_setup cannot give a ring of the dumped
 * size (the kernel sizes rings by the number of possible CPUs).
 */
import { NR, ProcMem } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import type { SmapsEntry } from '../../proc/index.js';
import type { AioRingEntry, VmaEntry } from '../../images/messages.js';
import type { RestoreTaskHandle } from '../types.js';
import { MREMAP_MAYMOVE, MREMAP_FIXED } from '../../sys/mman.js';
import { AT_FDCWD, O_WRONLY, O_CLOEXEC } from '../../sys/fcntl.js';

const HEADER = 32; // struct aio_ring, before io_events[]
const EVENT = 32; // struct io_event
const MAGIC = 0xa10a10a1;
const IOCB_CMD_PWRITE = 1;
const IOCB_BYTES = 64;
const SUBMIT_BATCH = 4096;

export function isAioRing(v: SmapsEntry): boolean {
  return v.path === '/[aio]' || v.path.startsWith('/[aio] ');
}

interface RingHeader { id: number; nr: number; head: number; tail: number; magic: number; headerLength: number }

function header(b: Buffer): RingHeader {
  return { id: b.readUInt32LE(0), nr: b.readUInt32LE(4), head: b.readUInt32LE(8), tail: b.readUInt32LE(12), magic: b.readUInt32LE(16), headerLength: b.readUInt32LE(28) };
}

/** Events a ring of `len` bytes holds. */
function eventsIn(len: bigint): number {
  return Number((len - BigInt(HEADER)) / BigInt(EVENT));
}

/**
 * The aio_ring_entry of a ring, after checking its header. nr_req is what
 * io_setup must be asked for to get a ring of this size again: the kernel
 * doubles the request and adds 2 (CRIU writes the same estimate).
 */
export function dumpAioRing(pid: number, v: SmapsEntry): AioRingEntry {
  const m = new ProcMem(pid);
  const b = Buffer.alloc(HEADER);
  try {
    m.read(v.start, b);
  } finally {
    m.close();
  }
  const h = header(b);
  const len = v.end - v.start;
  const nr = eventsIn(len);
  if (h.magic !== MAGIC || h.headerLength !== HEADER || h.nr !== nr || h.head >= nr || h.tail >= nr) {
    throw new CriuTsError('EUNSUPPORTED', `task ${pid}: AIO ring at 0x${v.start.toString(16)}: its header is not a sane ring (nr ${h.nr}, head ${h.head}, tail ${h.tail})`, { pid, start: v.start });
  }
  return { id: v.start, nr_req: Math.floor((nr - 2) / 2), ring_len: Number(len) };
}

/**
 * Put the task's AIO contexts back, each at its VMA's start, where its
 * pages (the dumped ring) were restored into a temporary anonymous
 * mapping. The kernel numbers a task's contexts by the first free slot
 * (the ring header's id): they are made in the order of their dumped ids,
 * and a slot that was free at dump time is held by a context of our own
 * until all are made.
 */
export function restoreAioRings(t: RestoreTaskHandle, rings: readonly { v: VmaEntry; entry: AioRingEntry | undefined }[]): void {
  const dumped = rings.map((r) => ({ ...r, old: t.tracee.readMem(r.v.start, Number(r.v.end - r.v.start)) }));
  dumped.sort((a, b) => header(a.old).id - header(b.old).id);
  const fillers: bigint[] = [];
  let next = 0;
  try {
    for (const r of dumped) {
      for (; next < header(r.old).id; next++) fillers.push(setup(t, 1));
      restoreAioRing(t, r.v, r.entry, r.old);
      next++;
    }
  } finally {
    for (const ctx of fillers) t.syscall('io_destroy', NR.io_destroy, ctx);
  }
}

function setup(t: RestoreTaskHandle, nrReq: number): bigint {
  const ctxAddr = t.putBytes(Buffer.alloc(8));
  t.syscall('io_setup', NR.io_setup, nrReq, ctxAddr);
  return t.tracee.readMem(ctxAddr, 8).readBigUInt64LE(0);
}

function restoreAioRing(t: RestoreTaskHandle, v: VmaEntry, ring: AioRingEntry | undefined, old: Buffer): void {
  const len = v.end - v.start;
  const nr = eventsIn(len);
  const nrReq = ring?.nr_req ?? Math.floor((nr - 2) / 2);
  const h = header(old);
  const where = `task ${t.pid}: AIO ring at 0x${v.start.toString(16)}`;
  if (h.nr !== nr || h.head >= nr || h.tail >= nr) {
    throw new CriuTsError('EIMAGE', `${where}: the dumped ring header is not sane (nr ${h.nr}, head ${h.head}, tail ${h.tail})`, { pid: t.pid });
  }
  const ctx = setup(t, nrReq);
  const fresh = header(t.tracee.readMem(ctx, HEADER));
  if (fresh.nr !== nr) {
    throw new CriuTsError('ERESTORE', `${where}: io_setup(${nrReq}) made a ring of ${fresh.nr} events, the dumped one had ${nr}`, { pid: t.pid });
  }
  if (h.head !== 0 || h.tail !== 0) advance(t, ctx, h);
  // The events as they were; the header (id, nr, head, tail) is the new context's own.
  t.tracee.writeMem(ctx + BigInt(HEADER), old.subarray(HEADER));
  if (ctx !== v.start) t.syscall('mremap(aio ring)', NR.mremap, ctx, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, v.start);
}

/**
 * Move the new ring's tail to the dumped one (head following), so the
 * kernel's own count of completed events agrees: each write to /dev/null
 * completes at once and takes one slot. With tail behind head the ring went
 * once around: nr + tail completions. Setting head in the ring is what
 * io_getevents does; it frees slots for the next submissions.
 */
function advance(t: RestoreTaskHandle, ctx: bigint, h: RingHeader): void {
  const count = h.tail < h.head ? h.nr + h.tail : h.tail;
  const batch = Math.min(count, h.nr - 1, SUBMIT_BATCH);
  const fd = Number(t.syscall('open /dev/null', NR.openat, AT_FDCWD, t.putString('/dev/null'), O_WRONLY | O_CLOEXEC, 0));
  try {
    const buf = Buffer.alloc(IOCB_BYTES + 8 + batch * 8);
    const base = t.putBytes(buf); // placed first: the addresses inside it are known
    buf.writeUInt16LE(IOCB_CMD_PWRITE, 16);
    buf.writeUInt32LE(fd, 20);
    buf.writeBigUInt64LE(base + BigInt(IOCB_BYTES), 24); // one byte of data, in this same buffer
    buf.writeBigUInt64LE(1n, 32);
    for (let i = 0; i < batch; i++) buf.writeBigUInt64LE(base, IOCB_BYTES + 8 + i * 8);
    t.tracee.writeMem(base, buf);
    const list = base + BigInt(IOCB_BYTES + 8);
    const headAt = ctx + 8n;
    let done = 0;
    while (done < count) {
      const n = Number(t.syscall('io_submit', NR.io_submit, ctx, Math.min(count - done, batch), list));
      if (n <= 0) throw new CriuTsError('ERESTORE', `task ${t.pid}: io_submit on the new AIO ring took no request`, { pid: t.pid });
      done += n;
      const head = Buffer.alloc(4);
      head.writeUInt32LE(Math.min(done, h.head) % h.nr);
      t.tracee.writeMem(headAt, head);
    }
  } finally {
    t.syscall('close', NR.close, fd);
  }
}
