/**
 * Bytes in flight in a pipe buffer, shared by pipes (pipes-data.img) and
 * FIFOs (fifo-data.img): one pipe_data_entry {pipe_id, bytes, size} plus the
 * raw bytes, once per pipe object.
 *
 * Dump reads without consuming: tee() from a read end of the task's pipe
 * into a pipe of ours sized like theirs, then drains ours. Restore sets the
 * buffer size first (F_SETPIPE_SZ) and writes the bytes back through an fd
 * of ours on the same pipe, so nothing is copied through the task.
 */
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import type { PipeDataEntry } from '../../images/messages.js';
import { closeQuiet, fcntl, ioctl, pipe2, tee, isSyscallError, FIONREAD, EAGAIN, O_CLOEXEC, O_ACCMODE, O_WRONLY, SPLICE_F_NONBLOCK, F_SETPIPE_SZ, F_GETPIPE_SZ } from '../../sys/index.js';
import { stateKey, type DumpContext, type KindImage, type RestoreContext } from '../types.js';


export type PipeDataImage = Extract<KindImage, 'PIPES_DATA' | 'FIFO_DATA'>;

/** pipe ids whose data this dump has written, by image */
const DONE = stateKey<Map<PipeDataImage, Set<number>>>('pipe-data:done');

/**
 * Record the bytes queued in the pipe behind our fd `localFd` (opened with
 * `flags`), unless this dump already did for `pipeId`. A write-only end is
 * reopened read-only through /proc so the data can be peeked all the same.
 */
export function dumpPipeData(ctx: DumpContext, image: PipeDataImage, pipeId: number, localFd: number, flags: number): void {
  const done = ctx.memo(DONE, () => new Map<PipeDataImage, Set<number>>());
  let ids = done.get(image);
  if (!ids) {
    ids = new Set();
    done.set(image, ids);
  }
  if (ids.has(pipeId)) return;
  ids.add(pipeId);
  const writeOnly = (flags & O_ACCMODE) === O_WRONLY;
  // O_NONBLOCK: a FIFO opened for reading must not wait for a writer.
  const rfd = writeOnly ? openSync(`/proc/self/fd/${localFd}`, constants.O_RDONLY | constants.O_NONBLOCK) : localFd;
  try {
    const size = fcntl(rfd, F_GETPIPE_SZ);
    const data = peekPipe(rfd, size);
    const entry: PipeDataEntry = { pipe_id: pipeId, bytes: data.length, size };
    ctx.emit(image, entry, data);
  } finally {
    if (rfd !== localFd) closeSync(rfd);
  }
}

function peekPipe(rfd: number, size: number): Buffer {
  const queued = Buffer.alloc(4);
  ioctl(rfd, FIONREAD, queued);
  const want = queued.readInt32LE(0);
  if (want === 0) return Buffer.alloc(0);
  const [r, w] = pipe2(O_CLOEXEC);
  try {
    // Ours must hold as many buffers as theirs, or tee stops short.
    fcntl(w, F_SETPIPE_SZ, size);
    let got = 0;
    try {
      got = tee(rfd, w, size, SPLICE_F_NONBLOCK);
    } catch (e) {
      if (!isSyscallError(e, EAGAIN)) throw e;
    }
    if (got !== want) {
      throw new CriuTsError('EDUMP', `pipe holds ${want} bytes but tee copied ${got}`, { want, got });
    }
    const out = Buffer.alloc(got);
    let off = 0;
    while (off < got) off += readSync(r, out, off, got - off, null);
    return out;
  } finally {
    closeQuiet(r);
    closeQuiet(w);
  }
}

interface PipeDataRecord {
  entry: PipeDataEntry;
  payload: Buffer;
}

/** Per restore and image: the data records by pipe id, and the pipes already filled. */
const RESTORED = stateKey<Map<PipeDataImage, { records: Map<number, PipeDataRecord>; filled: Set<number> }>>('pipe-data:restored');

function dataOf(image: PipeDataImage, ctx: RestoreContext): { records: Map<number, PipeDataRecord>; filled: Set<number> } {
  const all = ctx.state(RESTORED, () => new Map<PipeDataImage, { records: Map<number, PipeDataRecord>; filled: Set<number> }>());
  let d = all.get(image);
  if (!d) {
    const records = new Map<number, PipeDataRecord>();
    // No image: no pipe of that family had anything to keep.
    const img = ctx.kindImage(image);
    img.entries.forEach((entry, i) => records.set(entry.pipe_id, { entry, payload: img.payloads[i] ?? Buffer.alloc(0) }));
    d = { records, filled: new Set() };
    all.set(image, d);
  }
  return d;
}

/**
 * Give the pipe `pipeId` its dumped buffer size and bytes, through `ourFd`
 * (an fd of ours on that pipe, opened for writing). Once per pipe per restore.
 */
export function restorePipeData(image: PipeDataImage, pipeId: number, ourFd: number, ctx: RestoreContext): void {
  const d = dataOf(image, ctx);
  if (d.filled.has(pipeId)) return;
  d.filled.add(pipeId);
  const rec = d.records.get(pipeId);
  if (!rec) return;
  if (rec.entry.size !== undefined && rec.entry.size > 0) fcntl(ourFd, F_SETPIPE_SZ, rec.entry.size);
  const data = rec.payload;
  if (data.length !== rec.entry.bytes) {
    throw new CriuTsError('EIMAGE', `pipe ${pipeId}: ${rec.entry.bytes} bytes announced, ${data.length} in the image`, { pipeId });
  }
  let off = 0;
  while (off < data.length) off += writeSync(ourFd, data, off, data.length - off);
}
