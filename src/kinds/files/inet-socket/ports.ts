/**
 * Sockets of one dump that share a port: a SO_REUSEPORT group of listeners
 * or datagram sockets, SO_REUSEADDR datagram sockets, a listener and a
 * bound-only socket. The kernel let them in one after another while the
 * earlier ones still had the options on; some may have turned them off
 * since. So, as CRIU does, every bound socket gets SO_REUSEADDR (and, when
 * another socket of the dump in a SO_REUSEPORT group shares its port,
 * SO_REUSEPORT) while it binds and listens, and both go back to their dumped
 * values only once every task's files exist.
 */
import type { FileEntry, InetSkEntry } from '../../../images/messages.js';
import { closeQuiet, fdOfTask, setsockoptInt, SOCK_RAW, SOL_SOCKET, SO_REUSEADDR, SO_REUSEPORT } from '../../../sys/index.js';
import type { RestoreContext, RestoreTaskHandle } from '../../types.js';
import { setIntOpt } from './opts.js';


/** Another socket of the dump in a SO_REUSEPORT group on this port and protocol. */
function reuseportPeer(e: FileEntry, i: InetSkEntry, ctx: RestoreContext): boolean {
  return ctx.files.some((f) => f.id !== e.id && f.isk !== undefined && f.isk.proto === i.proto &&
    f.isk.src_port === i.src_port && f.isk.opts.so_reuseport === true);
}

/** What to turn on before bind (a raw socket's port is its protocol: nothing). */
export function holdPortOpts(t: RestoreTaskHandle, fd: number, e: FileEntry, i: InetSkEntry, ctx: RestoreContext): void {
  if (i.type === SOCK_RAW) return;
  if (!i.opts.reuseaddr) setIntOpt(t, fd, SOL_SOCKET, SO_REUSEADDR, 1, 'SO_REUSEADDR');
  if (!i.opts.so_reuseport && reuseportPeer(e, i, ctx)) setIntOpt(t, fd, SOL_SOCKET, SO_REUSEPORT, 1, 'SO_REUSEPORT');
}

/** Once every task's files exist: the dumped SO_REUSEADDR/SO_REUSEPORT back on task `pid`'s socket `fd`. */
export function releasePortOpts(pid: number, fd: number, e: FileEntry, i: InetSkEntry, ctx: RestoreContext): void {
  if (i.src_port === 0 || i.type === SOCK_RAW) return;
  const addr = !i.opts.reuseaddr;
  const port = !i.opts.so_reuseport && reuseportPeer(e, i, ctx);
  if (!addr && !port) return;
  ctx.afterAllFiles(() => {
    const ours = fdOfTask(pid, fd);
    try {
      if (addr) setsockoptInt(ours, SOL_SOCKET, SO_REUSEADDR, 0);
      if (port) setsockoptInt(ours, SOL_SOCKET, SO_REUSEPORT, 0);
    } finally {
      closeQuiet(ours);
    }
  });
}
