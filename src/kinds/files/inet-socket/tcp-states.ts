/**
 * TCP states beyond ESTABLISHED under TCP_REPAIR: which FINs a connection
 * has sent and received, and how a repaired socket is brought from
 * ESTABLISHED into that state again.
 *
 * TCP_REPAIR can only connect() a socket straight into ESTABLISHED. A
 * half-closed or closed connection is rebuilt from there, still in repair
 * mode, by replaying its FINs in the order they happened:
 * - our FIN: shutdown(SHUT_WR); with TCP_REPAIR_QUEUE = send queue the FIN
 *   counts as already sent (it was, if the peer acknowledged it);
 * - the peer's FIN, and the peer's ACK of ours: a segment that looks as if
 *   it came from the peer, written on a raw socket to the socket's own
 *   address, with the sequence numbers the connection expects.
 * The dumped sequence numbers count each FIN as one byte, while the queues
 * hold data only; restore takes the FINs out before the queues go in and
 * puts them back by replaying them.
 *
 * Which FIN comes first: FIN_WAIT1, FIN_WAIT2 and CLOSING sent theirs first;
 * CLOSE_WAIT, LAST_ACK and CLOSE received the peer's first (a CLOSE
 * connection, closed both ways or reset, is replayed as closed both ways:
 * its receive queue is still read back, then end of file).
 *
 * Known limits: TIME_WAIT and SYN_RECV have no socket of their own (no fd),
 * LISTEN is no connection; a reset connection comes back closed (read gives
 * the queued bytes then end of file, not ECONNRESET).
 */
import { CriuTsError } from '../../../errors.js';
import { AF_INET, AF_INET6, closeQuiet, getsockopt, inNetNamespaceOf, sendto, setsockoptInt, shutdown, sleepMs, socket, SOCK_RAW, SOL_SOCKET, SOL_TCP, TCP_INFO, TCP_REPAIR_QUEUE, SHUT_WR, IPPROTO_RAW, SO_MARK } from '../../../sys/index.js';
import { toSockaddr, isV4Mapped } from './addr.js';

export const TCP = {
  ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT1: 4, FIN_WAIT2: 5, TIME_WAIT: 6, CLOSE: 7, CLOSE_WAIT: 8,
  LAST_ACK: 9, LISTEN: 10, CLOSING: 11,
} as const;

export const TCP_STATE_NAMES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];

export const stateName = (s: number): string => TCP_STATE_NAMES[s] ?? `state ${s}`;

const bit = (...states: number[]): number => states.reduce((m, s) => m | (1 << s), 0);

/** States a connection is dumped in through TCP_REPAIR (CLOSE only when it has a peer address). */
export const REPAIRABLE = bit(TCP.ESTABLISHED, TCP.SYN_SENT, TCP.FIN_WAIT1, TCP.FIN_WAIT2, TCP.CLOSE_WAIT, TCP.LAST_ACK, TCP.CLOSING, TCP.CLOSE);
/** our FIN went into the send queue before the peer's FIN arrived */
const OUR_FIN_FIRST = bit(TCP.FIN_WAIT1, TCP.FIN_WAIT2, TCP.CLOSING);
/** our FIN went into the send queue after the peer's FIN arrived */
const OUR_FIN_SECOND = bit(TCP.LAST_ACK, TCP.CLOSE);
/** the peer acknowledged our FIN */
const OUR_FIN_ACKED = bit(TCP.FIN_WAIT2, TCP.CLOSE);
/** the peer's FIN arrived (before ours was queued, or after: CLOSING) */
const PEER_FIN = bit(TCP.CLOSE_WAIT, TCP.LAST_ACK, TCP.CLOSE, TCP.CLOSING);

export const hasOurFin = (state: number): boolean => ((OUR_FIN_FIRST | OUR_FIN_SECOND) & (1 << state)) !== 0;
export const hasPeerFin = (state: number): boolean => (PEER_FIN & (1 << state)) !== 0;

const QUEUE = { NONE: 0, SEND: 2 } as const;
/** CRIU's mark for its own packets (SOCCR_MARK): network-lock rules let them through */
export const REPAIR_PACKET_MARK = 0xc114;
const TH = { FIN: 0x01, ACK: 0x10 } as const;

/** What the replay needs of one connection: addresses, and the sequence numbers with the FINs taken out. */
export interface Replay {
  family: number;
  src: readonly number[];
  srcPort: number;
  dst: readonly number[];
  dstPort: number;
  /** rcv_nxt without the peer's FIN */
  rcvNxt: number;
  /** snd_una: what the peer has acknowledged, without our FIN */
  sndUna: number;
  /** the window the peer advertises, unscaled, for the segments we write in its name */
  window: number;
}

export function tcpState(fd: number): number {
  const b = Buffer.alloc(8);
  getsockopt(fd, SOL_TCP, TCP_INFO, b);
  return b.readUInt8(0);
}

function ourFin(fd: number, acked: boolean): void {
  // With the send queue selected, repair mode files the FIN as sent (the peer has it).
  if (acked) setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.SEND);
  shutdown(fd, SHUT_WR);
  if (acked) setsockoptInt(fd, SOL_TCP, TCP_REPAIR_QUEUE, QUEUE.NONE);
}

/** 16-bit one's complement sum of `b`, folded. */
function sum16(b: Buffer, start = 0): number {
  let s = start;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Image words (network-order bytes as host-endian u32) to the 4 or 16 address bytes. */
function addrBytes(words: readonly number[], n: number): Buffer {
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt32LE(w >>> 0, 4 * i));
  return b.subarray(0, n);
}


/**
 * One TCP segment from the peer to our socket (no payload, no options),
 * written whole (IP header included) on a raw socket of ours, made in the
 * net namespace of task `pid` (the connection's own: a segment written in
 * ours would go to our loopback, where no such connection exists).
 */
function fromPeer(pid: number, r: Replay, seq: number, ack: number, flags: number): void {
  const v4 = r.family === AF_INET || (isV4Mapped(r.src) && isV4Mapped(r.dst));
  const alen = v4 ? 4 : 16;
  // The peer is the source; our socket the destination.
  const from = v4 && r.family === AF_INET6 ? addrBytes(r.dst, 16).subarray(12) : addrBytes(r.dst, alen);
  const to = v4 && r.family === AF_INET6 ? addrBytes(r.src, 16).subarray(12) : addrBytes(r.src, alen);
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(r.dstPort, 0);
  tcp.writeUInt16BE(r.srcPort, 2);
  tcp.writeUInt32BE(seq >>> 0, 4);
  tcp.writeUInt32BE(ack >>> 0, 8);
  tcp.writeUInt8(5 << 4, 12);
  tcp.writeUInt8(flags, 13);
  tcp.writeUInt16BE(Math.min(r.window, 0xffff), 14);
  const pseudo = Buffer.alloc(v4 ? 12 : 40);
  if (v4) {
    from.copy(pseudo, 0);
    to.copy(pseudo, 4);
    pseudo.writeUInt8(6, 9);
    pseudo.writeUInt16BE(tcp.length, 10);
  } else {
    from.copy(pseudo, 0);
    to.copy(pseudo, 16);
    pseudo.writeUInt32BE(tcp.length, 32);
    pseudo.writeUInt8(6, 39);
  }
  tcp.writeUInt16BE(~sum16(tcp, sum16(pseudo)) & 0xffff, 16);
  let ip: Buffer;
  if (v4) {
    ip = Buffer.alloc(20);
    ip.writeUInt8(0x45, 0);
    ip.writeUInt16BE(20 + tcp.length, 2);
    ip.writeUInt8(64, 8);
    ip.writeUInt8(6, 9);
    from.copy(ip, 12);
    to.copy(ip, 16);
    ip.writeUInt16BE(~sum16(ip) & 0xffff, 10);
  } else {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE(6 << 28, 0);
    ip.writeUInt16BE(tcp.length, 4);
    ip.writeUInt8(6, 6);
    ip.writeUInt8(64, 7);
    from.copy(ip, 8);
    to.copy(ip, 24);
  }
  const fam = v4 ? AF_INET : AF_INET6;
  // IPPROTO_RAW: we write the IP header ourselves (IP_HDRINCL, IPv6 too since 4.5).
  const raw = inNetNamespaceOf(pid, () => socket(fam, SOCK_RAW, IPPROTO_RAW));
  try {
    setsockoptInt(raw, SOL_SOCKET, SO_MARK, REPAIR_PACKET_MARK);
    const dest = v4 ? toSockaddr(AF_INET, [to.readUInt32LE(0)], 0) : toSockaddr(AF_INET6, r.src, 0);
    sendto(raw, Buffer.concat([ip, tcp]), 0, dest);
  } finally {
    closeQuiet(raw);
  }
}

/** States a connection reaches from `s` by what the peer does (acknowledge our FIN, send its own). */
const LATER: Readonly<Record<number, number>> = {
  [TCP.ESTABLISHED]: bit(TCP.CLOSE_WAIT),
  [TCP.FIN_WAIT1]: bit(TCP.FIN_WAIT2, TCP.CLOSING, TCP.CLOSE),
  [TCP.FIN_WAIT2]: bit(TCP.CLOSE),
  [TCP.CLOSING]: bit(TCP.CLOSE),
  [TCP.LAST_ACK]: bit(TCP.CLOSE),
};

/**
 * Wait (briefly: loopback delivers before sendto returns, other devices a
 * moment later) for `fd` to reach `want`, or a state the peer may have
 * moved it on to meanwhile (a FIN of ours it acknowledges now).
 */
function awaitState(fd: number, want: number, what: string, step: string): void {
  const ok = (1 << want) | (LATER[want] ?? 0);
  for (let i = 0; i < 200; i++) {
    if (ok & (1 << tcpState(fd))) return;
    sleepMs(5);
  }
  throw new CriuTsError('ERESTORE', `${what}: ${step}: the connection is ${stateName(tcpState(fd))}, not ${stateName(want)}`, { state: want });
}

/**
 * Bring our copy `fd` of a repaired connection, now ESTABLISHED in repair
 * mode with its queues back, into the dumped `state` by replaying its FINs.
 * Runs once every socket of the restore exists, so that whatever the
 * kernel sends meanwhile finds a socket of the dump at the other end
 * rather than a closed port that answers with a reset. `pid` is a task of
 * the connection's net namespace (the peer's segments are written there).
 */
export function replayFins(pid: number, fd: number, state: number, r: Replay, what: string): void {
  const m = 1 << state;
  let rcvNxt = r.rcvNxt;
  let sndUna = r.sndUna;
  if (m & OUR_FIN_FIRST) {
    ourFin(fd, (m & OUR_FIN_ACKED) !== 0);
    awaitState(fd, TCP.FIN_WAIT1, what, 'our FIN');
  }
  if (m & PEER_FIN) {
    fromPeer(pid, r, rcvNxt, sndUna, TH.FIN | TH.ACK);
    awaitState(fd, m & OUR_FIN_FIRST ? TCP.CLOSING : TCP.CLOSE_WAIT, what, "the peer's FIN");
    rcvNxt = (rcvNxt + 1) >>> 0;
  }
  if (m & OUR_FIN_SECOND) {
    ourFin(fd, (m & OUR_FIN_ACKED) !== 0);
    awaitState(fd, TCP.LAST_ACK, what, 'our FIN');
  }
  if (m & OUR_FIN_ACKED) {
    sndUna = (sndUna + 1) >>> 0;
    fromPeer(pid, r, rcvNxt, sndUna, TH.ACK);
  }
  awaitState(fd, state, what, 'replaying its FINs');
}
