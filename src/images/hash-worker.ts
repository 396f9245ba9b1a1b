/**
 * SHA-256 of big streamed files (pages images) on a worker thread, so the
 * dump does not wait for it: on a machine with a spare core, hashing 1 GiB
 * overlaps the reads from the tasks and the writes to disk instead of
 * adding to them. The dump loop is synchronous, so the hand-over is too:
 * each chunk is copied into one of two shared slots (a memcpy, far cheaper
 * than the hash), the worker is told by message, and a slot is reused only
 * once the worker marks it free (Atomics.wait). The digest comes back on a
 * MessagePort read with receiveMessageOnPort, again without leaving the
 * synchronous path. Where a worker cannot be started, the caller hashes
 * inline.
 */
import { createHash } from 'node:crypto';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';

const SLOTS = 2;
/** The pages writer hands over 4 MiB at a time (its buffer); two slots keep the worker busy while the next chunk is read. */
const SLOT_BYTES = 4 << 20;
/** ctl[0..SLOTS-1]: 1 while a slot is being hashed; ctl[SLOTS]: 1 when a digest is waiting on the port */
const DIGEST_READY = SLOTS;

// An eval'd CommonJS worker: no file to find next to a bundled criu-ts.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { slots, ctl, port } = workerData;
const views = slots.map((s) => Buffer.from(s));
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (h === undefined) { h = createHash('sha256'); hashes.set(m.id, h); }
    h.update(views[m.slot].subarray(0, m.len));
    Atomics.store(ctl, m.slot, 0);
    Atomics.notify(ctl, m.slot);
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    port.postMessage(h.digest());
    Atomics.store(ctl, ${DIGEST_READY}, 1);
    Atomics.notify(ctl, ${DIGEST_READY});
  }
});
`;

interface Shared {
  worker: Worker;
  slots: Buffer[];
  ctl: Int32Array;
  port: MessagePort;
  next: number;
  ids: number;
}

let shared: Shared | null | undefined;

function start(): Shared | null {
  try {
    const slotSabs = Array.from({ length: SLOTS }, () => new SharedArrayBuffer(SLOT_BYTES));
    const ctl = new Int32Array(new SharedArrayBuffer(4 * (SLOTS + 1)));
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { slots: slotSabs, ctl, port: port1 }, transferList: [port1] });
    // Never keeps criu-ts alive by itself.
    worker.unref();
    port2.unref();
    return { worker, slots: slotSabs.map((s) => Buffer.from(s)), ctl, port: port2, next: 0, ids: 0 };
  } catch {
    return null;
  }
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

  update(data: Uint8Array): void {
    if (this.s === null) {
      this.inline?.update(data);
      return;
    }
    const s = this.s;
    for (let off = 0; off < data.length; off += SLOT_BYTES) {
      const chunk = data.subarray(off, Math.min(data.length, off + SLOT_BYTES));
      const slot = s.next;
      s.next = (s.next + 1) % SLOTS;
      while (Atomics.load(s.ctl, slot) !== 0) Atomics.wait(s.ctl, slot, 1);
      (s.slots[slot] as Buffer).set(chunk, 0);
      Atomics.store(s.ctl, slot, 1);
      s.worker.postMessage({ op: 'update', id: this.id, slot, len: chunk.length });
    }
  }

  digest(): Buffer {
    if (this.s === null) return (this.inline as ReturnType<typeof createHash>).digest();
    const s = this.s;
    Atomics.store(s.ctl, DIGEST_READY, 0);
    s.worker.postMessage({ op: 'digest', id: this.id });
    for (;;) {
      Atomics.wait(s.ctl, DIGEST_READY, 0);
      const m = receiveMessageOnPort(s.port);
      if (m !== undefined) return Buffer.from(m.message as Uint8Array);
    }
  }
}
