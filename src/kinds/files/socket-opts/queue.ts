/**
 * Bytes queued for reading on a socket (CRIU's sk-queues.img: one
 * sk_packet_entry {id_for, length} plus the bytes per message).
 *
 * Dump peeks without consuming, from our copy of the socket: MSG_PEEK with
 * SO_PEEK_OFF stepping through the queue (the task's own peek offset is put
 * back afterwards). Restore sends the messages again, in order, into the
 * socket from its peer or through its name.
 */
import { CriuTsError } from '../../../errors.js';
import { imageFile } from '../../../images/index.js';
import type { SkPacketEntry } from '../../../images/messages.js';
import { closeQuiet, getsockoptInt, isSyscallError, recvmsg, scmRightsFds, sendto, setsockoptInt, MSG_CTRUNC, MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, SOCK_STREAM, SOL_SOCKET, SCM_RIGHTS, sendmsgRights, SO_RCVBUF, EAGAIN, SO_PEEK_OFF } from '../../../sys/index.js';
import { stateKey, type DumpContext, type RestoreContext } from '../../types.js';

const CONTROL_BYTES = 4096;
/** never more messages than this: a guard against a queue that does not advance */
const MAX_MESSAGES = 1 << 20;

/**
 * Peek every queued message of our socket copy `fd` and record them for file
 * `id`. Files in flight (SCM_RIGHTS) the peek hands us go to the core
 * (ctx.dumpInFlight), which dumps them, keeps the fds and gives their ids.
 */
export function dumpQueue(ctx: DumpContext, fd: number, id: number, type: number, what: string, holderPid: number): void {
  const inFlight = ctx.dumpInFlight?.bind(ctx);
  const saved = getsockoptInt(fd, SOL_SOCKET, SO_PEEK_OFF);
  setsockoptInt(fd, SOL_SOCKET, SO_PEEK_OFF, 0);
  try {
    // A datagram never exceeds the receive buffer; a stream peek may stop anywhere.
    const buf = Buffer.alloc(Math.max(getsockoptInt(fd, SOL_SOCKET, SO_RCVBUF), 1 << 16) * 2);
    for (let i = 0; i < MAX_MESSAGES; i++) {
      let r;
      try {
        r = recvmsg(fd, buf, CONTROL_BYTES, MSG_PEEK | MSG_DONTWAIT | (type === SOCK_STREAM ? 0 : MSG_TRUNC));
      } catch (e) {
        if (isSyscallError(e, EAGAIN)) return;
        throw e;
      }
      const fds = scmRightsFds(r.control);
      if (r.flags & MSG_CTRUNC || (fds.length > 0 && !inFlight)) {
        fds.forEach(closeQuiet);
        throw new CriuTsError('EUNSUPPORTED', `${what}: file descriptors in flight (SCM_RIGHTS) ${r.flags & MSG_CTRUNC ? 'beyond what one peek can take' : 'cannot be dumped here'}`, { id });
      }
      let rights: number[] = [];
      try {
        rights = fds.map((f, i) => {
          fds[i] = -1; // the callee owns it now
          return (inFlight as (localFd: number, what: string, holderPid: number) => number)(f, `${what}: fd in flight`, holderPid);
        });
      } finally {
        fds.filter((f) => f >= 0).forEach(closeQuiet);
      }
      if (r.bytes > buf.length || r.flags & MSG_TRUNC) {
        throw new CriuTsError('EDUMP', `${what}: a queued message of ${r.bytes} bytes does not fit the peek buffer`, { id });
      }
      // Zero bytes: end of a stream, or an empty datagram the peek offset cannot step over.
      if (r.bytes === 0) {
        if (rights.length > 0) throw new CriuTsError('EUNSUPPORTED', `${what}: files in flight on an empty message cannot be told from the end of the queue`, { id });
        return;
      }
      const entry: SkPacketEntry = { id_for: id, length: r.bytes };
      if (rights.length > 0) entry.scm = [{ type: SCM_RIGHTS, rights }];
      ctx.emit('SK_QUEUES', entry, Buffer.from(buf.subarray(0, r.bytes)));
    }
    throw new CriuTsError('EDUMP', `${what}: receive queue did not end after ${MAX_MESSAGES} messages`, { id });
  } finally {
    setsockoptInt(fd, SOL_SOCKET, SO_PEEK_OFF, saved);
  }
}

/** One queued message: its bytes and the file ids it carries (SCM_RIGHTS). */
export interface QueuedMsg {
  data: Buffer;
  rights: number[];
}

/** The queued messages of file `id` in the dump being restored, in order. */
export function queueOf(id: number, ctx: RestoreContext): QueuedMsg[] {
  const all = ctx.state(QUEUES, () => {
    const m = new Map<number, QueuedMsg[]>();
    const img = ctx.kindImage('SK_QUEUES');
    img.entries.forEach((e, i) => {
      const list = m.get(e.id_for) ?? [];
      const scm = e.scm ?? [];
      if (scm.some((s) => s.type !== SCM_RIGHTS)) {
        throw new CriuTsError('EUNSUPPORTED', `${imageFile('SK_QUEUES')}: a message of socket ${e.id_for} carries control data other than SCM_RIGHTS`, { id: e.id_for });
      }
      list.push({ data: img.payloads[i] ?? Buffer.alloc(0), rights: scm.flatMap((s) => s.rights ?? []) });
      m.set(e.id_for, list);
    });
    return m;
  });
  return all.get(id) ?? [];
}

/**
 * Whether `msgs` carry a file some task holds (a socket carrying itself or
 * its peer, zdtm scm06): such a queue is sent once every task's fds exist,
 * with that very file (ctx.taskFileCopy), never a second one made for the
 * message.
 */
export function carriesTaskFiles(msgs: readonly QueuedMsg[], ctx: RestoreContext): boolean {
  return msgs.some((m) => m.rights.some((id) => ctx.isTaskFile?.(id) ?? false));
}

/** sk-queues.img by socket: file id → its messages in order */
const QUEUES = stateKey<Map<number, QueuedMsg[]>>('socket-queues');

/**
 * Send `msgs` from our socket `from` (the receiver's peer, or any socket when
 * `to`, the receiver's address, is given), one send per message so datagram
 * and record boundaries come back as they were. Files in flight are opened
 * with `open` (file id → an fd of ours), sent with the first bytes of their
 * message, and closed on our side.
 */
export function sendQueue(from: number, msgs: readonly QueuedMsg[], what: string, to?: Buffer, open?: (fileId: number) => number): void {
  for (const { data: m, rights } of msgs) {
    const fds: number[] = [];
    try {
      if (rights.length > 0) {
        if (!open) throw new CriuTsError('ERESTORE', `${what}: files in flight cannot be sent from here`, {});
        for (const id of rights) fds.push(open(id));
      }
      let off = 0;
      do {
        let n: number;
        try {
          n = off === 0 && fds.length > 0
            ? sendmsgRights(from, m, fds, MSG_DONTWAIT, to)
            : sendto(from, off === 0 ? m : m.subarray(off), MSG_DONTWAIT, to);
        } catch (e) {
          throw new CriuTsError('ERESTORE', `${what}: cannot queue ${m.length} bytes back: ${(e as Error).message}`, {}, e);
        }
        off += n;
      } while (off < m.length);
    } finally {
      fds.forEach(closeQuiet);
    }
  }
}

