/**
 * SHA-256 of big streamed files (pages images) on a worker thread, so the
 * dump does not wait for it: on a machine with a spare core, hashing 1 GiB
 * overlaps the reads from the tasks and the writes to disk instead of
 * adding to them. The dump loop is synchronous, so the hand-over is too.
 *
 * Bytes in a SharedArrayBuffer are *lent*: the worker hashes them in
 * place, and the writer waits (settle) before it fills that memory again.
 * The pages writer streams through two such halves of its buffer, so
 * nothing is copied and no memory beyond its own buffer is needed. Other
 * bytes are copied into one lent slot (a memcpy, far cheaper than the
 * hash). Each lent buffer has a flag, 1 while the worker holds it
 * (Atomics.wait). The digest comes back on a MessagePort read with
 * receiveMessageOnPort, again without leaving the synchronous path. Where
 * a worker cannot be started, the caller hashes inline.
 */
import { createHash } from 'node:crypto';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';

/** Copies of unshared bytes go through one slot this big, created on first need. */
const SLOT_BYTES = 2 << 20;

// An eval'd CommonJS worker: no file to find next to a bundled criu-ts.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { port, digestCtl } = workerData;
const lent = new Map();
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'lend') {
    lent.set(m.buf, { view: Buffer.from(m.sab), ctl: new Int32Array(m.ctl) });
  } else if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (h === undefined) { h = createHash('sha256'); hashes.set(m.id, h); }
    const l = lent.get(m.buf);
    h.update(l.view.subarray(m.off, m.off + m.len));
    Atomics.store(l.ctl, 0, 0);
    Atomics.notify(l.ctl, 0);
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    port.postMessage(h.digest());
    Atomics.store(digestCtl, 0, 1);
    Atomics.notify(digestCtl, 0);
  }
});
`;

interface Lent {
  id: number;
  /** [0]: 1 while the worker hashes bytes of this buffer */
  ctl: Int32Array;
}

interface Shared {
  worker: Worker;
  digestCtl: Int32Array;
  port: MessagePort;
  lent: WeakMap<SharedArrayBuffer, Lent>;
  lentIds: number;
  slot: Buffer | undefined;
  ids: number;
}

let shared: Shared | null | undefined;

function start(): Shared | null {
  try {
    const digestCtl = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { port: port1, digestCtl },
      transferList: [port1],
      // It only hashes bytes it is lent: a small heap is all it needs.
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
    });
    // Never keeps criu-ts alive by itself.
    worker.unref();
    port2.unref();
    return { worker, digestCtl, port: port2, lent: new WeakMap(), lentIds: 0, slot: undefined, ids: 0 };
  } catch {
    return null;
  }
}

function lentOf(s: Shared, sab: SharedArrayBuffer): Lent {
  let l = s.lent.get(sab);
  if (l === undefined) {
    const ctlSab = new SharedArrayBuffer(4);
    l = { id: ++s.lentIds, ctl: new Int32Array(ctlSab) };
    s.lent.set(sab, l);
    s.worker.postMessage({ op: 'lend', buf: l.id, sab, ctl: ctlSab });
  }
  return l;
}

function waitFree(l: Lent): void {
  while (Atomics.load(l.ctl, 0) !== 0) Atomics.wait(l.ctl, 0, 1);
}

/** A buffer the hash worker can read in place: StreamHash.update() lends it instead of copying. */
export function shareableBuffer(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}

/** One file's running SHA-256, on the worker when there is one. */
export class StreamHash {
  private readonly s: Shared | null;
  private readonly id: number;
  private readonly inline: ReturnType<typeof createHash> | undefined;

  constructor() {
    if (shared === undefined) shared = start();
    this.s = shared;
    this.id = this.s === null ? 0 : ++this.s.ids;
    this.inline = this.s === null ? createHash('sha256') : undefined;
  }

  /** Whether update() lends SharedArrayBuffer-backed bytes (the caller must settle() them before writing there again). */
  get lends(): boolean {
    return this.s !== null;
  }

  /**
   * Add bytes. Bytes of a SharedArrayBuffer are hashed in place: leave
   * them alone until settle(). Others are copied first.
   */
  update(data: Uint8Array): void {
    if (this.s === null) {
      this.inline?.update(data);
      return;
    }
    const s = this.s;
    if (data.buffer instanceof SharedArrayBuffer) {
      this.lend(s, data.buffer, data.byteOffset, data.length);
      return;
    }
    s.slot ??= shareableBuffer(SLOT_BYTES);
    const slot = s.slot;
    for (let off = 0; off < data.length; off += SLOT_BYTES) {
      const chunk = data.subarray(off, Math.min(data.length, off + SLOT_BYTES));
      waitFree(lentOf(s, slot.buffer as SharedArrayBuffer));
      slot.set(chunk, 0);
      this.lend(s, slot.buffer as SharedArrayBuffer, slot.byteOffset, chunk.length);
    }
  }

  /** Wait until the worker is done with the bytes lent from `data`'s buffer. */
  settle(data: Uint8Array): void {
    if (this.s === null || !(data.buffer instanceof SharedArrayBuffer)) return;
    const l = this.s.lent.get(data.buffer);
    if (l !== undefined) waitFree(l);
  }

  private lend(s: Shared, sab: SharedArrayBuffer, off: number, len: number): void {
    const l = lentOf(s, sab);
    waitFree(l);
    Atomics.store(l.ctl, 0, 1);
    s.worker.postMessage({ op: 'update', id: this.id, buf: l.id, off, len });
  }

  /** The digest; every lent byte has been hashed when it returns. */
  digest(): Buffer {
    if (this.s === null) return (this.inline as ReturnType<typeof createHash>).digest();
    const s = this.s;
    Atomics.store(s.digestCtl, 0, 0);
    s.worker.postMessage({ op: 'digest', id: this.id });
    for (;;) {
      Atomics.wait(s.digestCtl, 0, 0);
      const m = receiveMessageOnPort(s.port);
      if (m !== undefined) return Buffer.from(m.message as Uint8Array);
    }
  }
}
