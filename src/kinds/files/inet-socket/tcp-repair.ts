/**
 * Established TCP connections through TCP_REPAIR (--tcp-established): CRIU's
 * tcp-stream-<ino>.img, one tcp_stream_entry followed by the receive queue
 * then the send queue bytes.
 *
 * Dump puts the socket in repair mode from our copy and reads the sequence
 * numbers of both queues, their bytes (MSG_PEEK per queue), MSS, window
 * scales, timestamp and windows. The socket stays in repair mode until the
 * dump is over, so that the task's death closes it silently (no FIN or RST
 * to the peer); if the task lives on (the dump failed), repair mode is
 * switched off again, and SO_REUSEADDR (which repair mode overrides) put
 * back, before the task runs. A dump that leaves the tree running (-R)
 * does that as soon as the socket is read; criu-ts killed meanwhile, its
 * guardian does it (infect/guardian-undo.ts).
 *
 * Restore creates the socket in the task and does the rest from our copy:
 * repair mode, queue sequence numbers, bind and connect (no handshake in
 * repair mode), options, timestamp, queue bytes, windows. Once every socket
 * of the restore exists (the peer may be in another task, restored later):
 * bytes never sent, the FINs of a half-closed or closed connection
 * (tcp-states.ts). Repair mode goes off last, once the network lock is
 * lifted, just before the tasks run (CRIU's order): the window probe that
 * leaving repair mode sends reaches the peer, so a peer that reset the
 * connection meanwhile resets it now, before the task's first send. A
 * SYN_SENT socket is bound in repair mode and connects (sending its SYN
 * again, same sequence number) only then.
 *
 * Known limits: see tcp-states.ts for the states; with --network-lock skip, a peer
 * outside the dump that sends meanwhile gets a reset.
 */
import { CriuTsError } from '../../../errors.js';
import type { InetSkEntry, TcpStreamEntry } from '../../../images/messages.js';
import {
  bindSockaddr, closeQuiet, connect, dup, fcntl, getsockopt, getsockoptInt, getsockoptTry, ioctl, isSyscallError,
  recvmsg, sendto, setsockopt, setsockoptInt, MSG_DONTWAIT, MSG_PEEK, SOL_SOCKET, SOL_TCP, TCP_INFO, TCP_REPAIR_QUEUE,
  SIOCINQ, EAGAIN, F_GETFL, F_SETFL, O_NONBLOCK, SO_RCVBUF, SO_SNDBUFFORCE, SO_REUSEADDR, TCP_MAXSEG, TCP_REPAIR,
  TCP_QUEUE_SEQ, TCP_REPAIR_OPTIONS, TCP_TIMESTAMP, TCP_REPAIR_WINDOW, SIOCOUTQ, SIOCOUTQNSD, EINPROGRESS, SO_SNDBUF,
  SO_RCVBUFFORCE, SO_BUF_LOCK,
} from '../../../sys/index.js';
import { imageFile } from '../../../images/index.js';
import { stateKey, type DumpContext, type RestoreContext } from '../../types.js';
import { guardian } from '../../../infect/guardian.js';
import { toSockaddr } from './addr.js';
import { hasOurFin, hasPeerFin, replayFins, TCP, type Replay } from './tcp-states.js';

const QUEUE = { NONE: 0, RECV: 1, SEND: 2 } as const;
/** tcpi_options bits, which are also tcp_stream_entry.opt_mask */
const OPT = { TIMESTAMPS: 1, SACK: 2, WSCALE: 4 } as const;
const TCPOPT = { MSS: 2, WINDOW: 3, SACK_PERM: 4, TIMESTAMP: 8 } as const;


function queueLen(fd: number, req: number): number {
  const b = Buffer.alloc(4);
  ioctl(fd, req, b);
  return b.readInt32LE(0);
}

/** Room for bytes that arrive while we look: a peek larger than the queue simply returns less. */
const PEEK_SLACK = 1 << 20;

function queueSeq(fd: number, queue: number): number {
  setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, queue);
  return getsockoptInt(fd, SOL_TCP, TCP_QUEUE_SEQ) >>> 0;
}

function peek(fd: number, queue: number, room: number): Buffer {
  setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, queue);
  const buf = Buffer.alloc(room);
  try {
    return buf.subarray(0, recvmsg(fd, buf, 0, MSG_PEEK | MSG_DONTWAIT).bytes);
  } catch (e) {
    if (isSyscallError(e, EAGAIN)) return Buffer.alloc(0);
    throw e;
  }
}

/**
 * The receive queue and rcv_nxt, read so that they agree: repair mode
 * freezes the socket's own sending, not what the peer sends meanwhile
 * (without a network lock, or a peer in the dump not yet frozen), so the
 * sequence number is read on both sides of the peek until it holds still.
 */
function receiveQueue(fd: number, what: string): { seq: number; data: Buffer; win: Buffer } {
  for (let i = 0; i < 16; i++) {
    const seq = queueSeq(fd, QUEUE.RECV);
    const data = peek(fd, QUEUE.RECV, queueLen(fd, SIOCINQ) + PEEK_SLACK);
    // The windows move with what arrives too: read them inside the same still moment.
    const win = Buffer.alloc(20);
    getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, win);
    if (queueSeq(fd, QUEUE.RECV) === seq) return { seq, data, win };
  }
  throw new CriuTsError('EDUMP', `${what}: the receive queue keeps growing while it is read (a peer sending; a network lock would hold it)`, {});
}

/**
 * Read the connection state of our socket copy `fd` (in `state`; the
 * task's fd `owner.fd` of `owner.pid`) into tcp-stream-<ino>.img. A dump
 * that kills the tree leaves it in repair mode, so that the task's death
 * closes it silently; a tree that runs on (-R) gets it back at once, so
 * that a criu-ts killed later leaves no socket of its in repair mode (the
 * network lock holds its packets until the tree runs). The guardian is told
 * before repair mode goes on: killed in between, criu-ts leaves it to take
 * the socket out again (infect/guardian-undo.ts).
 */
export function dumpTcpStream(ctx: DumpContext, fd: number, ino: number, state: number, what: string, owner: { pid: number; fd: number }): void {
  // Repair mode on forces SO_REUSEADDR and off clears it (the kernel's sk_reuse): put back the task's own.
  const reuse = getsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR);
  const guard = guardian();
  guard?.repairing(owner.pid, owner.fd, ino, reuse);
  try {
    setsockoptInt(fd, SOL_TCP, TCP_REPAIR, 1);
  } catch (e) {
    throw new CriuTsError('EDUMP', `${what}: cannot enter TCP repair mode: ${(e as Error).message}`, { ino }, e);
  }
  const repairOff = (s: number): void => {
    setsockoptInt(s, SOL_TCP, TCP_REPAIR, 0);
    setsockoptInt(s, SOL_SOCKET, SO_REUSEADDR, reuse);
    guard?.repaired(owner.pid, owner.fd);
  };
  if (ctx.opts.leaveRunning === true) {
    try {
      readTcpStream(ctx, fd, ino, state, what);
    } finally {
      repairOff(fd);
    }
    return;
  }
  // Ours keeps the socket open past the task's death, so it still closes in repair mode.
  const held = dup(fd);
  ctx.atExit((tasksLive) => {
    try {
      if (tasksLive) repairOff(held);
    } finally {
      closeQuiet(held);
    }
  });
  readTcpStream(ctx, fd, ino, state, what);
}

/** The connection's state, read from our copy `fd` in repair mode, into tcp-stream-<ino>.img. */
function readTcpStream(ctx: DumpContext, fd: number, ino: number, state: number, what: string): void {
  const info = Buffer.alloc(232);
  getsockopt(fd, SOL_TCP, TCP_INFO, info);
  const optMask = info.readUInt8(5) & (OPT.TIMESTAMPS | OPT.SACK | OPT.WSCALE);
  const scales = info.readUInt8(6);
  const { seq: inqSeq, data: inq, win } = receiveQueue(fd, what);
  // write_seq holds still (the task is frozen); acknowledgements arriving
  // meanwhile only shorten the queue from its head, so what the peek
  // returns is the queue that ends at write_seq.
  const outqSeq = queueSeq(fd, QUEUE.SEND);
  let outq = state === TCP.CLOSE ? Buffer.alloc(0) : peek(fd, QUEUE.SEND, queueLen(fd, SIOCOUTQ) + 1);
  // Read after the peek: a byte sent meanwhile counts as sent, which a retransmit makes good.
  let unsent = queueLen(fd, SIOCOUTQNSD);
  setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.NONE);
  // Our FIN counts one sequence number (also among the unsent) and carries no data.
  if (hasOurFin(state)) unsent = Math.max(0, unsent - 1);
  // Reset or closed both ways: nobody will ever acknowledge or read what was in flight.
  if (state === TCP.CLOSE) {
    outq = Buffer.alloc(0);
    unsent = 0;
  }
  unsent = Math.min(unsent, outq.length);
  const e: TcpStreamEntry = {
    inq_len: inq.length, inq_seq: inqSeq, outq_len: outq.length, outq_seq: outqSeq,
    opt_mask: optMask,
    snd_wscale: scales & 0xf,
    mss_clamp: getsockoptInt(fd, SOL_TCP, TCP_MAXSEG),
    rcv_wscale: scales >> 4,
    cork: getsockoptInt(fd, SOL_TCP, 3) !== 0,
    nodelay: getsockoptInt(fd, SOL_TCP, 1) !== 0,
    unsq_len: unsent,
    snd_wl1: win.readUInt32LE(0), snd_wnd: win.readUInt32LE(4), max_window: win.readUInt32LE(8),
    rcv_wnd: win.readUInt32LE(12), rcv_wup: win.readUInt32LE(16),
  };
  if (optMask & OPT.TIMESTAMPS) e.timestamp = getsockoptInt(fd, SOL_TCP, TCP_TIMESTAMP) >>> 0;
  ctx.saveImage('TCP_STREAM', ino, [e], [Buffer.concat([inq, outq])]);
}

/** what the queues may take while they are written back */
const QUEUE_BUF_BYTES = 1 << 30;

/**
 * Run `fn` with both buffers of socket `fd` raised: the queues were filled
 * up to the buffer sizes by many small writes, and written back in a few
 * large ones they are charged differently (a full send queue of 4 MiB took
 * only 97% back). The sizes and their lock bits are put back after, so the
 * restored socket is as full, and as limited, as the dumped one.
 */
function withRoomyBuffers<T>(fd: number, fn: () => T): T {
  const snd = getsockoptInt(fd, SOL_SOCKET, SO_SNDBUF);
  const rcv = getsockoptInt(fd, SOL_SOCKET, SO_RCVBUF);
  const lockBuf = Buffer.alloc(4);
  const lock = getsockoptTry(fd, SOL_SOCKET, SO_BUF_LOCK, lockBuf) >= 4 ? lockBuf.readInt32LE(0) : undefined;
  setsockoptInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, QUEUE_BUF_BYTES / 2);
  setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, QUEUE_BUF_BYTES / 2);
  try {
    return fn();
  } finally {
    // The kernel doubles what it is given.
    setsockoptInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, Math.floor(snd / 2));
    setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, Math.floor(rcv / 2));
    if (lock !== undefined) setsockoptInt(fd, SOL_SOCKET, SO_BUF_LOCK, lock);
  }
}

function sendAll(fd: number, data: Buffer, what: string): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += sendto(fd, data.subarray(off), MSG_DONTWAIT);
    } catch (e) {
      if (isSyscallError(e, EAGAIN)) throw new CriuTsError('ERESTORE', `${what}: the socket takes only ${off} of ${data.length} queued bytes`, {}, e);
      throw e;
    }
  }
}

/**
 * Make our copy `ours` of a fresh socket of the task the dumped connection,
 * still in repair mode and still ESTABLISHED (or only bound, for SYN_SENT).
 * Returns what `releaseRepaired` needs once every socket exists.
 */
export function restoreTcpStream(ctx: RestoreContext, ours: number, i: InetSkEntry, what: string): Pending {
  const img = ctx.image('TCP_STREAM', i.ino);
  if (!img) throw new CriuTsError('ENOIMAGE', `${what}: ${imageFile('TCP_STREAM', i.ino)} is missing`, { ino: i.ino });
  const e = img.entries[0];
  if (!e) throw new CriuTsError('EIMAGE', `${what}: ${imageFile('TCP_STREAM', i.ino)} is empty`, { ino: i.ino });
  const data = img.extras[0] ?? Buffer.alloc(0);
  const inq = data.subarray(0, e.inq_len);
  const outq = data.subarray(e.inq_len, e.inq_len + e.outq_len);
  const unsent = Math.min(e.unsq_len ?? 0, outq.length);
  // The FINs are replayed later (tcp-states.ts); the sequence numbers go in without them.
  const rcvNxt = (e.inq_seq - (hasPeerFin(i.state) ? 1 : 0)) >>> 0;
  const writeSeq = (e.outq_seq - (hasOurFin(i.state) ? 1 : 0)) >>> 0;
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR, 1);
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.RECV);
  setsockoptInt(ours, SOL_TCP, TCP_QUEUE_SEQ, (rcvNxt - e.inq_len) | 0);
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.SEND);
  // Bytes never sent go out normally later: the repaired send queue holds only the sent ones.
  // A SYN_SENT socket's write_seq counts its SYN; connect() sends it again from write_seq.
  setsockoptInt(ours, SOL_TCP, TCP_QUEUE_SEQ, (writeSeq - e.outq_len - (i.state === TCP.SYN_SENT ? 1 : 0)) | 0);
  if (e.timestamp !== undefined) setsockoptInt(ours, SOL_TCP, TCP_TIMESTAMP, e.timestamp | 0);
  // Repair mode forces port reuse: the listener that accepted this connection holds the same port.
  bindSockaddr(ours, toSockaddr(i.family, i.src_addr ?? [], i.src_port));
  const replay: Replay = {
    family: i.family, src: i.src_addr ?? [], srcPort: i.src_port, dst: i.dst_addr ?? [], dstPort: i.dst_port,
    rcvNxt, sndUna: (writeSeq - e.outq_len) >>> 0, window: Math.floor((e.snd_wnd ?? 0xffff) / 2 ** e.snd_wscale),
  };
  const pending: Pending = { unsent: Buffer.alloc(0), what, state: i.state, replay, dst: toSockaddr(i.family, i.dst_addr ?? [], i.dst_port) };
  // Its SYN goes out when the peer can answer (releaseRepaired).
  if (i.state === TCP.SYN_SENT) return pending;
  // connect() sizes segments from the MSS clamp it finds (536 by default, which a
  // receiver used to large segments may leave unacknowledged for long): give it
  // the dumped one, as if the user had set TCP_MAXSEG (32767 at most), and take
  // that setting back once connected.
  setsockoptInt(ours, SOL_TCP, TCP_MAXSEG, Math.min(e.mss_clamp, 32767));
  connect(ours, pending.dst);
  setsockoptInt(ours, SOL_TCP, TCP_MAXSEG, 0);
  const opts: [number, number][] = [[TCPOPT.MSS, e.mss_clamp]];
  if (e.opt_mask & OPT.WSCALE) opts.push([TCPOPT.WINDOW, e.snd_wscale + ((e.rcv_wscale ?? 0) << 16)]);
  if (e.opt_mask & OPT.SACK) opts.push([TCPOPT.SACK_PERM, 0]);
  if (e.opt_mask & OPT.TIMESTAMPS) opts.push([TCPOPT.TIMESTAMP, 0]);
  const ob = Buffer.alloc(8 * opts.length);
  opts.forEach(([code, val], k) => {
    ob.writeUInt32LE(code, 8 * k);
    ob.writeUInt32LE(val >>> 0, 8 * k + 4);
  });
  setsockopt(ours, SOL_TCP, TCP_REPAIR_OPTIONS, ob);
  withRoomyBuffers(ours, () => {
    setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.RECV);
    sendAll(ours, inq, `${what}: receive queue`);
    setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.SEND);
    sendAll(ours, outq.subarray(0, outq.length - unsent), `${what}: send queue`);
    setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.NONE);
  });
  if (e.snd_wl1 !== undefined && e.snd_wnd !== undefined && e.max_window !== undefined && e.rcv_wnd !== undefined && e.rcv_wup !== undefined) {
    // The peer's FIN, replayed later, takes one sequence number of the window as it was.
    const fin = hasPeerFin(i.state) ? 1 : 0;
    const w = Buffer.alloc(20);
    // The kernel takes no window edge past rcv_nxt (a segment the peer sent while we looked, in older images).
    const past = (x: number): boolean => ((x - e.inq_seq) | 0) > 0;
    const wl1 = past(e.snd_wl1) ? e.inq_seq : e.snd_wl1;
    const wup = past(e.rcv_wup) ? e.inq_seq : e.rcv_wup;
    const vals = [wl1, e.snd_wnd, Math.max(e.max_window, e.snd_wnd), e.rcv_wnd + fin, wup - fin];
    vals.forEach((v, k) => w.writeUInt32LE(v >>> 0, 4 * k));
    try {
      setsockopt(ours, SOL_TCP, TCP_REPAIR_WINDOW, w);
    } catch (err) {
      throw new CriuTsError('ERESTORE', `${what}: the kernel refuses its windows (snd_wl1 ${vals[0]! >>> 0}, snd_wnd ${vals[1]}, max_window ${vals[2]}, rcv_wnd ${vals[3]}, rcv_wup ${vals[4]! >>> 0}; rcv_nxt ${rcvNxt}): ${(err as Error).message}`, {}, err);
    }
  }
  pending.unsent = Buffer.from(outq.subarray(outq.length - unsent));
  return pending;
}

export interface Pending {
  unsent: Buffer;
  what: string;
  state: number;
  replay: Replay;
  dst: Buffer;
}

/**
 * Remember what a repaired socket still needs once the task's other sockets
 * exist. No descriptor of ours is kept meanwhile: a restore that fails
 * before `finish` leaves nothing open on our side.
 */
/** connections restored in repair mode, waiting for `finish`: file id → what is left to do */
const REPAIRED = stateKey<Map<number, Pending>>('inet-socket:repaired');

export function holdRepaired(ctx: RestoreContext, id: number, p: Pending): void {
  ctx.state(REPAIRED, () => new Map<number, Pending>()).set(id, p);
}

/** What restoreTcpStream left for later on connection `id`, taken once. */
export function takeRepaired(ctx: RestoreContext, id: number): Pending | undefined {
  const held = ctx.state(REPAIRED, () => new Map<number, Pending>());
  const p = held.get(id);
  held.delete(id);
  return p;
}

/**
 * Once every socket of the restore exists, still under the network lock,
 * on our copy `ours`: the bytes never sent, then the connection's FINs
 * (tcp-states.ts); it stays in repair mode. `pid` is the task that holds
 * it (its net namespace is the connection's).
 */
export function settleRepaired(p: Pending, ours: number, pid: number): void {
  if (p.state === TCP.SYN_SENT) return;
  if (p.unsent.length > 0) {
    // Never sent: they go out as the task would have sent them, behind the repaired ones.
    setsockoptInt(ours, SOL_TCP, TCP_REPAIR, 0);
    withRoomyBuffers(ours, () => sendAll(ours, p.unsent, `${p.what}: unsent bytes`));
    setsockoptInt(ours, SOL_TCP, TCP_REPAIR, 1);
  }
  if (p.state !== TCP.ESTABLISHED) replayFins(pid, ours, p.state, p.replay, p.what);
}

/**
 * The connection goes live on our copy `ours`, once the network lock is
 * lifted (as CRIU orders it): repair mode off, whose window probe tells
 * the peer where we are at once (a peer that is gone answers it with a
 * reset before the task runs); a SYN_SENT socket sends its SYN again.
 */
export function releaseRepaired(p: Pending, ours: number): void {
  if (p.state === TCP.SYN_SENT) {
    setsockoptInt(ours, SOL_TCP, TCP_REPAIR, 0);
    const fl = fcntl(ours, F_GETFL);
    fcntl(ours, F_SETFL, fl | O_NONBLOCK);
    try {
      connect(ours, p.dst);
    } catch (e) {
      if (!isSyscallError(e, EINPROGRESS)) throw e;
    } finally {
      fcntl(ours, F_SETFL, fl);
    }
    return;
  }
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR, 0);
}
