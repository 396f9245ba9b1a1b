/**
 * Namespace files held open (an fd from open("/proc/PID/ns/net") and the
 * like, "net:[4026531993]"): CRIU's NS file_entry (ns_file_entry: ns_id as
 * in ids-PID.img, the CLONE_NEW* flag of its type, the open flags).
 *
 * A namespace the holder itself is in is reopened by the task
 * (/proc/self/ns/<type>) once its namespaces are in place (the restored
 * ones, or criu-ts's own). A net namespace of the tree other than the
 * holder's (another task's: a parent's fd of its child's, a child's of
 * the one it left) is named by its ns id, as CRIU writes it, and handed to
 * the holder from our fd of it (the net kind makes every one before any
 * file). Refused at dump with one line, as CRIU refuses them: an fd of a
 * namespace no task of the tree is in (held only by fds or a bind mount),
 * and of another task's namespace of any other type.
 */
import { fstatSync, statSync } from 'node:fs';
import { nsLinkOf } from '../../proc/index.js';
import { NR, AT_FDCWD, O_CLOEXEC } from '../../sys/index.js';
import type { FileEntry } from '../../images/messages.js';
import type { DumpContext, FileKind, FdProbe, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { part } from './anon-inode.js';
import { DUMP_NET_NAMESPACES } from './socket-opts/net-ns.js';
import { netNamespaceFd } from '../ns/net.js';

/** The CLONE_NEW* flag of each namespace type, as ns_cflag holds it. */
const CLONE_FLAG: Readonly<Record<string, number>> = {
  mnt: 0x00020000, cgroup: 0x02000000, uts: 0x04000000, ipc: 0x08000000,
  user: 0x10000000, pid: 0x20000000, net: 0x40000000, time: 0x00000080,
};

function nsOf(link: string): { type: string; ino: number } | undefined {
  const m = /^([a-z]+):\[(\d+)\]$/.exec(link);
  return m && m[1] !== undefined && CLONE_FLAG[m[1]] !== undefined ? { type: m[1], ino: Number(m[2]) } : undefined;
}

export const nsFileKind: FileKind = {
  name: 'ns',
  type: 'NS',
  detect: (p: FdProbe) => nsOf(p.link) !== undefined,
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
    const ns = nsOf(p.link);
    if (!ns) throw new CriuTsError('EDUMP', `task ${p.pid} fd ${p.fd}: ${p.link} is not a namespace`, { pid: p.pid, fd: p.fd });
    const own = nsLinkOf(p.pid, ns.type) ?? ''; // '': no such namespace type here
    const flags = p.fdinfo.flags & ~O_CLOEXEC;
    const entry = (nsId: number): FileEntry => ({ type: 'NS', id, nsf: { id, ns_id: nsId, ns_cflag: CLONE_FLAG[ns.type] ?? 0, flags } });
    if (own === p.link && ctx.nsIdOf) return entry(ctx.nsIdOf(ns.type, ns.ino));
    // Another net namespace the tree's tasks are in (the net kind saved it, before any file).
    const tree = ns.type === 'net' ? ctx.memo(DUMP_NET_NAMESPACES, () => new Map<number, number>()).get(ns.ino) : undefined;
    if (tree !== undefined) return entry(tree);
    const why = ns.type === 'net'
      ? 'no task of the tree is in it (held only by fds or a bind mount), so nothing of it is saved (CRIU refuses it too)'
      : `criu-ts reopens only a task's own ${ns.type} namespace and the tree's net namespaces`;
    throw new CriuTsError('EUNSUPPORTED',
      `task ${p.pid} fd ${p.fd}: ${p.link} is a namespace the task is not in (its own is ${own || 'unknown'}): ${why}`,
      { pid: p.pid, fd: p.fd, link: p.link });
  },
  restore(t: RestoreTaskHandle, e: FileEntry, _fdi, ctx): number {
    const nsf = part(e, 'nsf', 'NS');
    const type = Object.entries(CLONE_FLAG).find(([, f]) => f === nsf.ns_cflag)?.[0];
    if (!type) throw new CriuTsError('EIMAGE', `file ${e.id}: namespace file of unknown type 0x${nsf.ns_cflag.toString(16)}`, { id: e.id });
    if (type === 'net') {
      // A net namespace of the tree other than the task's own: our fd of it, handed over.
      const ours = netNamespaceFd(ctx, nsf.ns_id);
      if (ours !== undefined && fstatSync(ours).ino !== statSync(`/proc/${t.pid}/ns/net`).ino) return t.installFd(ours);
    }
    const path = `/proc/self/ns/${type}`;
    return Number(t.syscall(`open ${path}`, NR.openat, AT_FDCWD, t.putString(path), nsf.flags & ~O_CLOEXEC, 0));
  },
};
