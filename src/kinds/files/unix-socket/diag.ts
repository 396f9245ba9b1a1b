/**
 * What the kernel tells about unix sockets through sock_diag (UNIX_DIAG):
 * name, bound inode, peer, pending connections of a listener ("icons"),
 * queue lengths and shutdown state, looked up by socket inode.
 */
import { AF_UNIX, nlAttrs, sockDiag, isSyscallError, ENOENT, TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN, UDIAG_SHOW_NAME, UDIAG_SHOW_VFS, UDIAG_SHOW_PEER, UDIAG_SHOW_ICONS, UDIAG_SHOW_RQLEN, UNIX_DIAG_NAME, UNIX_DIAG_VFS, UNIX_DIAG_PEER, UNIX_DIAG_ICONS, UNIX_DIAG_RQLEN, UNIX_DIAG_SHUTDOWN } from '../../../sys/index.js';

const SHOW_ALL = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN;
const MSG_HDR_BYTES = 16;


export interface UnixDiag {
  ino: number;
  type: number;
  state: number;
  /** sun_path bytes as bound (abstract names start with a NUL); empty when unbound */
  name: Buffer;
  /** inode and device of the bound socket file */
  vfs?: { ino: number; dev: number };
  /** inode of the peer, 0 if none */
  peer: number;
  /** for a listener: the peer (client) inode of each pending connection, 0 once that client closed */
  icons: number[];
  /** listener: pending connections; others: bytes queued for reading (the first datagram's for dgram) */
  rqueue: number;
  /** listener: backlog; others: bytes sent and not yet read by the peer */
  wqueue: number;
  /** RCV_SHUTDOWN (1) | SEND_SHUTDOWN (2) */
  shutdown: number;
}

/** A sun_path as text, without the NULs the kernel keeps after path names. */
export function nameText(name: Buffer): string {
  let end = name.length;
  while (end > 0 && name[end - 1] === 0) end--;
  return name.subarray(0, end).toString();
}

function request(ino: number, states: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt8(AF_UNIX, 0);
  b.writeUInt32LE(states >>> 0, 4);
  b.writeUInt32LE(ino, 8);
  b.writeUInt32LE(SHOW_ALL, 12);
  // no cookie: match by inode alone
  b.writeUInt32LE(0xffffffff, 16);
  b.writeUInt32LE(0xffffffff, 20);
  return b;
}

function parse(msg: Buffer): UnixDiag {
  const a = nlAttrs(msg, MSG_HDR_BYTES);
  const vfs = a.get(UNIX_DIAG_VFS);
  const rq = a.get(UNIX_DIAG_RQLEN);
  const icons = a.get(UNIX_DIAG_ICONS);
  const out: UnixDiag = {
    ino: msg.readUInt32LE(4),
    type: msg.readUInt8(1),
    state: msg.readUInt8(2),
    name: Buffer.from(a.get(UNIX_DIAG_NAME) ?? Buffer.alloc(0)),
    peer: a.get(UNIX_DIAG_PEER)?.readUInt32LE(0) ?? 0,
    icons: [],
    rqueue: rq?.readUInt32LE(0) ?? 0,
    wqueue: rq?.readUInt32LE(4) ?? 0,
    shutdown: a.get(UNIX_DIAG_SHUTDOWN)?.readUInt8(0) ?? 0,
  };
  if (vfs) out.vfs = { ino: vfs.readUInt32LE(0), dev: vfs.readUInt32LE(4) };
  if (icons) for (let off = 0; off + 4 <= icons.length; off += 4) out.icons.push(icons.readUInt32LE(off));
  return out;
}

/** One socket by inode; undefined if the kernel knows no unix socket by that inode. */
export function unixDiag(ino: number): UnixDiag | undefined {
  try {
    const msgs = sockDiag(request(ino, 0xffffffff), false);
    const m = msgs[0];
    return m ? parse(m) : undefined;
  } catch (e) {
    if (isSyscallError(e, ENOENT)) return undefined;
    throw e;
  }
}

/** Every listening unix socket of our network namespace. */
export function unixListeners(): UnixDiag[] {
  return sockDiag(request(0, 1 << TCP_LISTEN), true).map(parse);
}
