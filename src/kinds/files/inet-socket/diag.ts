/**
 * What the kernel tells about TCP and UDP sockets through sock_diag
 * (INET_DIAG, inet_diag_req_v2): state, queue lengths (a listener's pending
 * connections and backlog), shutdown. The kernel has no lookup by inode
 * alone, so each (family, protocol) table is listed once per dump and
 * indexed by inode; an unbound socket is in no table (the caller falls back
 * to getsockname/TCP_INFO, as CRIU does).
 */
import { readNsLink } from '../../../proc/index.js';
import { stateKey, type DumpContext } from '../../types.js';
import { nlAttrs, sockDiag, TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN, INET_DIAG_SHUTDOWN, TCP_BOUND_INACTIVE, TCP_TIME_WAIT } from '../../../sys/index.js';

const REQ_BYTES = 56;
const MSG_BYTES = 72;
const ALL_STATES = 0xffffffff;


export interface InetDiag {
  ino: number;
  state: number;
  /** listener: connections waiting for accept(); others: bytes not read yet */
  rqueue: number;
  /** listener: the backlog; others: bytes not acknowledged/sent yet */
  wqueue: number;
  /** RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2) */
  shutdown: number;
}

function request(family: number, proto: number): Buffer {
  const b = Buffer.alloc(REQ_BYTES);
  b.writeUInt8(family, 0);
  b.writeUInt8(proto, 1);
  b.writeUInt32LE(ALL_STATES, 4);
  return b;
}

function parse(msg: Buffer): InetDiag {
  const a = nlAttrs(msg, MSG_BYTES);
  const state = msg.readUInt8(1);
  return {
    ino: msg.readUInt32LE(68),
    // CRIU sees a bound-only socket as closed (older kernels do not list it at all).
    state: state === TCP_BOUND_INACTIVE ? TCP_CLOSE : state,
    rqueue: msg.readUInt32LE(56),
    wqueue: msg.readUInt32LE(60),
    shutdown: a.get(INET_DIAG_SHUTDOWN)?.readUInt8(0) ?? 0,
  };
}

/** sock_diag listings of this dump, by "net namespace:family:proto" */
const TABLES = stateKey<Map<string, Map<number, InetDiag>>>('inet-socket:diag');

function table(family: number, proto: number): Map<number, InetDiag> {
  const m = new Map<number, InetDiag>();
  for (const msg of sockDiag(request(family, proto), true)) {
    if (msg.length < MSG_BYTES) continue;
    const d = parse(msg);
    // Time-wait and request minisockets carry no inode.
    if (d.ino !== 0) m.set(d.ino, d);
  }
  return m;
}

/**
 * The socket `ino` of this family and protocol in the caller's net
 * namespace (the caller steps into the task's), or undefined if the kernel
 * lists none (unbound).
 */
export function inetDiag(ctx: DumpContext, family: number, proto: number, ino: number): InetDiag | undefined {
  // Tasks are frozen during a dump: one listing per table serves every socket.
  const tables = ctx.memo(TABLES, () => new Map<string, Map<number, InetDiag>>());
  const key = `${readNsLink('thread-self', 'net')}:${family}:${proto}`;
  let t = tables.get(key);
  if (!t) {
    t = table(family, proto);
    tables.set(key, t);
  }
  return t.get(ino);
}


function tcpOnPort(family: number, port: number, states: number): number {
  const req = request(family, 6 /* IPPROTO_TCP */);
  req.writeUInt32LE(states >>> 0, 4);
  return sockDiag(req, true).filter((m) => m.length >= 8 && m.readUInt16BE(4) === port).length;
}

/**
 * Whether only TCP connections in TIME_WAIT hold local port `port` (they
 * block a bind unless both they and the new socket have SO_REUSEADDR).
 */
export function onlyTimeWaitOn(family: number, port: number): boolean {
  const tw = 1 << TCP_TIME_WAIT;
  return tcpOnPort(family, port, tw) > 0 && tcpOnPort(family, port, ALL_STATES & ~tw) === 0;
}
