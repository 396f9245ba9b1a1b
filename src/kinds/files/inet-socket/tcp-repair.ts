/**
 * Established TCP connections through TCP_REPAIR (--tcp-established): CRIU's
 * tcp-stream-<ino>.img, one tcp_stream_entry followed by the receive queue
 * then the send queue bytes.
 *
 * Dump puts the socket in repair mode from our copy and reads the sequence
 * numbers of both queues, their bytes (MSG_PEEK per queue), MSS, window
 * scales, timestamp and windows. The socket stays in repair mode until the
 * dump is over, so that the task's death closes it silently (no FIN or RST
 * to the peer); if the task lives on (left running, or the dump failed),
 * repair mode is switched off again.
 *
 * Restore creates the socket in the task and does the rest from our copy:
 * repair mode, queue sequence numbers, bind and connect (no handshake in
 * repair mode), options, timestamp, queue bytes, windows; repair mode goes
 * off in `finish`, once every socket of the task (a listener sharing the
 * port) is bound. Bytes never sent are sent normally afterwards.
 *
 * Known limits: ESTABLISHED only (FIN_WAIT, CLOSE_WAIT, ... are refused); no
 * network lock: a peer outside the dump that sends meanwhile gets a reset.
 */
import { join } from 'node:path';
import { CriuTsError } from '../../../errors.js';
import { readImage, writeImage } from '../../../images/index.js';
import type { InetSkEntry, TcpStreamEntry } from '../../../images/messages.js';
import {
  bindSockaddr, closeQuiet, connect, dup, getsockopt, getsockoptInt, ioctl, isSyscallError, recvmsg, sendto, setsockopt,
  setsockoptInt, MSG_DONTWAIT, MSG_PEEK, SOL_TCP,
} from '../../../sys/index.js';
import type { RestoreFilesContext } from '../../types.js';
import { dumpScope } from '../dump-extras.js';
import { toSockaddr } from './addr.js';

const TCP_MAXSEG = 2;
const TCP_INFO = 11;
const TCP_REPAIR = 19;
const TCP_REPAIR_QUEUE = 20;
const TCP_QUEUE_SEQ = 21;
const TCP_REPAIR_OPTIONS = 22;
const TCP_TIMESTAMP = 24;
const TCP_REPAIR_WINDOW = 29;
const QUEUE = { NONE: 0, RECV: 1, SEND: 2 } as const;
const SIOCINQ = 0x541b;
const SIOCOUTQ = 0x5411;
const SIOCOUTQNSD = 0x894b;
/** tcpi_options bits, which are also tcp_stream_entry.opt_mask */
const OPT = { TIMESTAMPS: 1, SACK: 2, WSCALE: 4 } as const;
const TCPOPT = { MSS: 2, WINDOW: 3, SACK_PERM: 4, TIMESTAMP: 8 } as const;
const EAGAIN = 11;

const streamImage = (ino: number): string => `tcp-stream-${ino.toString(16)}.img`;

function queueLen(fd: number, req: number): number {
  const b = Buffer.alloc(4);
  ioctl(fd, req, b);
  return b.readInt32LE(0);
}

function peekQueue(fd: number, queue: number, len: number): Buffer {
  setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, queue);
  if (len === 0) return Buffer.alloc(0);
  const buf = Buffer.alloc(len);
  const r = recvmsg(fd, buf, 0, MSG_PEEK | MSG_DONTWAIT);
  if (r.bytes !== len) throw new CriuTsError('EDUMP', `peeked ${r.bytes} of ${len} queued bytes`, { len });
  return buf;
}

/** Read the connection state of our socket copy `fd` into tcp-stream-<ino>.img; leaves it in repair mode. */
export function dumpTcpStream(fd: number, ino: number, what: string): void {
  const sc = dumpScope();
  if (!sc) throw new CriuTsError('EINTERNAL', `${what}: no dump in progress to take its TCP stream`, { ino });
  try {
    setsockoptInt(fd, SOL_TCP, TCP_REPAIR, 1);
  } catch (e) {
    throw new CriuTsError('EDUMP', `${what}: cannot enter TCP repair mode: ${(e as Error).message}`, { ino }, e);
  }
  // Ours keeps the socket open past the task's death, so it still closes in repair mode.
  const held = dup(fd);
  sc.atExit.push((tasksLive) => {
    try {
      if (tasksLive) setsockoptInt(held, SOL_TCP, TCP_REPAIR, 0);
    } finally {
      closeQuiet(held);
    }
  });
  const info = Buffer.alloc(232);
  getsockopt(fd, SOL_TCP, TCP_INFO, info);
  const optMask = info.readUInt8(5) & (OPT.TIMESTAMPS | OPT.SACK | OPT.WSCALE);
  const scales = info.readUInt8(6);
  setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.RECV);
  const inqSeq = getsockoptInt(fd, SOL_TCP, TCP_QUEUE_SEQ) >>> 0;
  setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.SEND);
  const outqSeq = getsockoptInt(fd, SOL_TCP, TCP_QUEUE_SEQ) >>> 0;
  const inq = peekQueue(fd, QUEUE.RECV, queueLen(fd, SIOCINQ));
  const outq = peekQueue(fd, QUEUE.SEND, queueLen(fd, SIOCOUTQ));
  setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.NONE);
  const win = Buffer.alloc(20);
  getsockopt(fd, SOL_TCP, TCP_REPAIR_WINDOW, win);
  const e: TcpStreamEntry = {
    inq_len: inq.length, inq_seq: inqSeq, outq_len: outq.length, outq_seq: outqSeq,
    opt_mask: optMask,
    snd_wscale: scales & 0xf,
    mss_clamp: getsockoptInt(fd, SOL_TCP, TCP_MAXSEG),
    rcv_wscale: scales >> 4,
    cork: getsockoptInt(fd, SOL_TCP, 3) !== 0,
    nodelay: getsockoptInt(fd, SOL_TCP, 1) !== 0,
    unsq_len: queueLen(fd, SIOCOUTQNSD),
    snd_wl1: win.readUInt32LE(0), snd_wnd: win.readUInt32LE(4), max_window: win.readUInt32LE(8),
    rcv_wnd: win.readUInt32LE(12), rcv_wup: win.readUInt32LE(16),
  };
  if (optMask & OPT.TIMESTAMPS) e.timestamp = getsockoptInt(fd, SOL_TCP, TCP_TIMESTAMP) >>> 0;
  writeImage(join(sc.dir, streamImage(ino)), 'TCP_STREAM', [e as unknown as Record<string, unknown>], [Buffer.concat([inq, outq])]);
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
 * still in repair mode. Returns the bytes that were never sent, for after.
 */
export function restoreTcpStream(ours: number, i: InetSkEntry, imagesDir: string, what: string): Buffer {
  const img = readImage(join(imagesDir, streamImage(i.ino)));
  const e = img.entries[0] as unknown as TcpStreamEntry | undefined;
  if (!e) throw new CriuTsError('EIMAGE', `${what}: ${streamImage(i.ino)} is empty`, { ino: i.ino });
  const data = img.extras[0] ?? Buffer.alloc(0);
  const inq = data.subarray(0, e.inq_len);
  const outq = data.subarray(e.inq_len, e.inq_len + e.outq_len);
  const unsent = Math.min(e.unsq_len ?? 0, outq.length);
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR, 1);
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.RECV);
  setsockoptInt(ours, SOL_TCP, TCP_QUEUE_SEQ, (e.inq_seq - e.inq_len) | 0);
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.SEND);
  // Bytes never sent go out normally later: the repaired send queue holds only the sent ones.
  setsockoptInt(ours, SOL_TCP, TCP_QUEUE_SEQ, (e.outq_seq - e.outq_len) | 0);
  if (e.timestamp !== undefined) setsockoptInt(ours, SOL_TCP, TCP_TIMESTAMP, e.timestamp | 0);
  // Repair mode forces port reuse: the listener that accepted this connection holds the same port.
  bindSockaddr(ours, toSockaddr(i.family, i.src_addr ?? [], i.src_port));
  connect(ours, toSockaddr(i.family, i.dst_addr ?? [], i.dst_port));
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
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.RECV);
  sendAll(ours, inq, `${what}: receive queue`);
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.SEND);
  sendAll(ours, outq.subarray(0, outq.length - unsent), `${what}: send queue`);
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.NONE);
  if (e.snd_wl1 !== undefined && e.snd_wnd !== undefined && e.max_window !== undefined && e.rcv_wnd !== undefined && e.rcv_wup !== undefined) {
    const w = Buffer.alloc(20);
    [e.snd_wl1, e.snd_wnd, e.max_window, e.rcv_wnd, e.rcv_wup].forEach((v, k) => w.writeUInt32LE(v >>> 0, 4 * k));
    setsockopt(ours, SOL_TCP, TCP_REPAIR_WINDOW, w);
  }
  return Buffer.from(outq.subarray(outq.length - unsent));
}

interface Pending {
  unsent: Buffer;
  what: string;
}

/**
 * Remember what a repaired socket still needs once the task's other sockets
 * exist. No descriptor of ours is kept meanwhile: a restore that fails
 * before `finish` leaves nothing open on our side.
 */
export function holdRepaired(ctx: RestoreFilesContext, id: number, p: Pending): void {
  ctx.shared.set(`inet-repaired:${id}`, p);
}

/** Leave repair mode on our copy `ours` (the connection goes live) and send what had never been sent. */
export function releaseRepaired(ctx: RestoreFilesContext, id: number, ours: number): void {
  const key = `inet-repaired:${id}`;
  const p = ctx.shared.get(key) as Pending | undefined;
  if (!p) return;
  ctx.shared.delete(key);
  setsockoptInt(ours, SOL_TCP, TCP_REPAIR, 0);
  sendAll(ours, p.unsent, `${p.what}: unsent bytes`);
}
