/**
 * Sockets and net namespaces at dump. sock_diag answers for the caller's
 * net namespace only, and a dump may meet sockets of several (the tree's
 * own, a nested one, files in flight sent from another): each socket kind
 * lists a namespace once per dump, from inside it, keyed by the namespace.
 *
 * A socket belongs to the namespace it was made in, whoever holds it: its
 * entry's ns_id names that namespace (the net kind saves every namespace a
 * task of the tree is in, and criu-ts's own is the inventory's), and the
 * restore makes it there (kinds/ns/net.ts, inSocketNetns). A socket of a
 * namespace no task of the tree is in is refused.
 */
import { statSync } from 'node:fs';
import { readNsLink } from '../../../proc/index.js';
import { CriuTsError } from '../../../errors.js';
import { inNetNamespaceOfSocket, netNamespaceInoOfSocket } from '../../../sys/index.js';
import { stateKey, type DumpContext, type FdProbe, type StateKey } from '../../types.js';

/** The net namespaces of the dump (their inode -> ns id): every one a task of the tree is in, and criu-ts's own; filled by the net kind. */
export const DUMP_NET_NAMESPACES = stateKey<Map<number, number>>('net:namespaces');
/** criu-ts's own net namespace's ns id (the inventory's), whose contents are not saved; filled by the net kind. */
export const CRIU_NET_NS = stateKey<{ id: number | undefined }>('net:ours');

/**
 * The ns id of the net namespace the socket behind our fd `sockFd` (task
 * `pid`'s fd `fd`, `link`) belongs to: `taskNsId` when it is the task's
 * own, else the id of the tree's namespace it is in.
 */
export function socketNetNsId(ctx: DumpContext, p: Pick<FdProbe, 'pid' | 'fd' | 'link' | 'localFd'>, taskNsId: number | undefined): number | undefined {
  let task: number;
  try {
    task = statSync(`/proc/${p.pid}/ns/net`).ino;
  } catch {
    return taskNsId;
  }
  const sock = netNamespaceInoOfSocket(p.localFd);
  if (sock === task) return taskNsId;
  const id = ctx.memo(DUMP_NET_NAMESPACES, () => new Map<number, number>()).get(sock);
  if (id === undefined) {
    throw new CriuTsError('EUNSUPPORTED',
      `task ${p.pid} fd ${p.fd}: ${p.link} belongs to net namespace net:[${sock}], which no task of the tree is in (the task's own is net:[${task}]): it cannot be made again there`,
      { pid: p.pid, fd: p.fd, link: p.link, socketNs: sock, taskNs: task });
  }
  return id;
}

/**
 * The listing `list` makes in the net namespace socket `sockFd` belongs
 * to, made there once per dump (the tasks are frozen: one listing serves
 * every socket of the namespace).
 */
export function listingFor<T>(ctx: DumpContext, key: StateKey<Map<string, T>>, sockFd: number, list: () => T): T {
  const byNs = ctx.memo(key, () => new Map<string, T>());
  return inNetNamespaceOfSocket(sockFd, () => {
    const ns = readNsLink('thread-self', 'net');
    let t = byNs.get(ns);
    if (t === undefined) {
      t = list();
      byNs.set(ns, t);
    }
    return t;
  });
}
