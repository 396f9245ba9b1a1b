/**
 * Unix domain sockets (AF_UNIX stream, datagram, seqpacket): CRIU's UNIXSK
 * file_entry (unix_sk_entry with sk_opts_entry) and sk-queues.img for bytes
 * waiting to be read. The kernel describes each socket through sock_diag
 * (name, peer, pending connections, queue lengths, shutdown).
 *
 * Handles socketpairs and connected pairs (re-made with socketpair), sockets
 * bound to absolute, relative and abstract names, listeners with their
 * backlog and with connections not accepted yet (the client connects again),
 * datagram sockets connected to a named peer, shutdown state, options and
 * queued data in both directions.
 *
 * Known limits: file descriptors in flight (SCM_RIGHTS) and credentials
 * messages are refused/dropped; bytes a client sent before its connection
 * was accepted are refused (the kernel gives no way to read them); an
 * accepted socket restored as a socketpair half reports no name; a socket
 * outside the dump is refused unless extUnixSk, and then must have a name.
 */
import type { FileEntry } from '../../../images/messages.js';
import { AF_UNIX, getsockoptInt, SOL_SOCKET, SO_DOMAIN } from '../../../sys/index.js';
import type { FileKind, FdProbe } from '../../types.js';
import { dumpUnixSocket } from './dump.js';
import { finishUnixSocket, restoreUnixSocket } from './restore.js';
import { inSocketNetns } from '../../ns/net.js';


export const unixSocketKind: FileKind = {
  name: 'unix-socket',
  type: 'UNIXSK',
  inheritKey: (e) => (e.usk ? `socket:[${e.usk.ino}]` : undefined),
  detect(p: FdProbe): boolean {
    if (!p.link.startsWith('socket:[') || !p.stat.isSocket()) return false;
    try {
      return getsockoptInt(p.localFd, SOL_SOCKET, SO_DOMAIN) === AF_UNIX;
    } catch {
      return false;
    }
  },
  dump: dumpUnixSocket,
  group(e: FileEntry): string | undefined {
    const u = e.usk;
    if (!u || u.peer === 0) return undefined;
    // Only a pair's two halves share a group; a lone socket names only itself.
    return `usk:${Math.min(u.ino, u.peer)}:${Math.max(u.ino, u.peer)}`;
  },
  restore: (t, e, _fdi, ctx) => inSocketNetns(t, ctx, e.usk?.ns_id, () => restoreUnixSocket(t, e, ctx)),
  finish: (t, e, fd, ctx) => inSocketNetns(t, ctx, e.usk?.ns_id, () => finishUnixSocket(t, e, fd, ctx)),
};
