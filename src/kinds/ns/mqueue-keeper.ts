/**
 * Reading a POSIX message queue without a window where criu-ts's death
 * loses messages (kernel: an mqueue inode; mq_timedreceive takes a message
 * out, there is no peek).
 *
 * A queue is read by receiving every message and sending them back in
 * order. Done in criu-ts itself, a SIGKILL between the two would take the
 * received messages with it. So a queue that holds messages is read by a
 * keeper: a node process of our own, in a session of its own, ignoring
 * SIGINT/SIGTERM/SIGHUP, with the queue's description as its stdin and a
 * pipe to us as its stdout. It receives every message, writes each to the
 * pipe (prio and length, 4 bytes each, little-endian, then the bytes),
 * sends them all back in the order received, and only then exits: when we
 * read EOF and its exit status is 0, the queue is as it was. If criu-ts
 * dies meanwhile, its writes fail (EPIPE) and it sends the messages back
 * all the same. Cost: one node start (about 60 ms of CPU) per queue that
 * holds messages; an empty queue needs none.
 */
import { closeSync, readSync, writeSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { faultPoint } from '../../fault.js';
import { nodeEntry, ownNodeEnv } from '../../node-start.js';
import { O_CLOEXEC, isOpenFd, mqGetattr, mqReceive, mqSend, pipe2, spawnProgram, waitPid, type MqMessage } from '../../sys/index.js';

const HEADER = 8;

/**
 * Every message of the queue open at `fd` (holding `count` of them, each
 * at most `msgsize` bytes), received and sent back by a keeper process;
 * `what` names the queue in errors.
 */
export function receiveKept(fd: number, msgsize: number, what: string): MqMessage[] {
  const [r, w] = pipe2(O_CLOEXEC);
  let pid: number;
  try {
    const stderr = isOpenFd(2) ? { stderr: 2 } : {};
    pid = spawnProgram(process.execPath, [process.execPath, '-e', nodeEntry('mqueueKeeperMain'), import.meta.url], {
      stdin: fd, stdout: w, ...stderr, setsid: true, env: ownNodeEnv(process.env),
    });
  } catch (e) {
    closeSync(r);
    throw new CriuTsError('EDUMP', `${what}: cannot start the process that reads it: ${(e as Error).message}`, {}, e);
  } finally {
    closeSync(w);
  }
  let bytes: Buffer;
  try {
    bytes = readAll(r, msgsize);
  } finally {
    closeSync(r);
  }
  const st = waitPid(pid, 0);
  if (st === null || !st.exited || st.exitCode !== 0) {
    throw new CriuTsError('EDUMP', `${what}: the process that reads it failed (${st?.signaled === true ? `signal ${st.termSig}` : `status ${st?.exitCode ?? '?'}`}): its messages may not all be back`, {});
  }
  return parseFrames(bytes, what);
}

/** The pipe's whole contents; the fault point "mqueue" passes once the first bytes are in (messages out of the queue, not yet back). */
function readAll(fd: number, msgsize: number): Buffer {
  const parts: Buffer[] = [];
  let buf = Buffer.allocUnsafe(Math.max(65536, msgsize + HEADER));
  let first = true;
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) return Buffer.concat(parts);
    parts.push(buf.subarray(0, n));
    buf = Buffer.allocUnsafe(buf.length);
    if (first) faultPoint('mqueue');
    first = false;
  }
}

function parseFrames(b: Buffer, what: string): MqMessage[] {
  const out: MqMessage[] = [];
  let o = 0;
  while (o < b.length) {
    if (o + HEADER > b.length) throw new CriuTsError('EINTERNAL', `${what}: the keeper's report ends in a header`, {});
    const prio = b.readUInt32LE(o);
    const len = b.readUInt32LE(o + 4);
    o += HEADER;
    if (o + len > b.length) throw new CriuTsError('EINTERNAL', `${what}: the keeper's report ends in a message`, {});
    out.push({ prio, data: Buffer.from(b.subarray(o, o + len)) });
    o += len;
  }
  return out;
}

/** The keeper's entry (started by receiveKept; exported by cli/main.ts for the bundle): stdin is the queue, stdout the pipe. */
export function mqueueKeeperMain(): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => undefined);
  const attr = mqGetattr(0);
  const messages: MqMessage[] = [];
  for (let m = mqReceive(0, attr.msgsize); m !== undefined; m = mqReceive(0, attr.msgsize)) messages.push(m);
  let reader = true;
  for (const m of messages) {
    if (!reader) break;
    const h = Buffer.alloc(HEADER);
    h.writeUInt32LE(m.prio, 0);
    h.writeUInt32LE(m.data.length, 4);
    try {
      writeAllTo(1, h);
      writeAllTo(1, m.data);
    } catch {
      reader = false; // criu-ts is gone: the messages go back all the same
    }
  }
  let failed = 0;
  for (const m of messages) {
    try {
      mqSend(0, m);
    } catch (e) {
      failed++;
      try {
        writeSync(2, `criu-ts: message queue keeper: a message could not be sent back: ${(e as Error).message}\n`);
      } catch {
        // no stderr
      }
    }
  }
  process.exit(failed === 0 ? 0 : 2);
}

function writeAllTo(fd: number, b: Buffer): void {
  for (let o = 0; o < b.length; ) o += writeSync(fd, b, o, b.length - o);
}
