/**
 * Namespace files held open (an fd from open("/proc/PID/ns/net") and the
 * like, "net:[4026531993]"): CRIU's NS file_entry (ns_file_entry: ns_id as
 * in ids-PID.img, the CLONE_NEW* flag of its type, the open flags).
 *
 * Only a namespace the holder itself is in can be named at restore: the
 * task reopens /proc/self/ns/<type> once its namespaces are in place (the
 * restored ones, or criu-ts's own). An fd of any other namespace is refused
 * at dump with one line.
 */
import { readlinkSync } from 'node:fs';
import { NR, AT_FDCWD, O_CLOEXEC } from '../../sys/index.js';
import type { FileEntry } from '../../images/messages.js';
import type { DumpContext, FileKind, FdProbe, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { part } from './anon-inode.js';

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
    let own = '';
    try {
      own = readlinkSync(`/proc/${p.pid}/ns/${ns.type}`);
    } catch {
      // no such namespace type here
    }
    if (own !== p.link || !ctx.nsIdOf) {
      throw new CriuTsError('EUNSUPPORTED',
        `task ${p.pid} fd ${p.fd}: ${p.link} is a namespace the task is not in (its own is ${own || 'unknown'}); criu-ts reopens only a task's own namespaces`,
        { pid: p.pid, fd: p.fd, link: p.link });
    }
    const flags = p.fdinfo.flags & ~O_CLOEXEC;
    return { type: 'NS', id, nsf: { id, ns_id: ctx.nsIdOf(ns.type, ns.ino), ns_cflag: CLONE_FLAG[ns.type] ?? 0, flags } };
  },
  restore(t: RestoreTaskHandle, e: FileEntry): number {
    const nsf = part(e, 'nsf', 'NS');
    const type = Object.entries(CLONE_FLAG).find(([, f]) => f === nsf.ns_cflag)?.[0];
    if (!type) throw new CriuTsError('EIMAGE', `file ${e.id}: namespace file of unknown type 0x${nsf.ns_cflag.toString(16)}`, { id: e.id });
    const path = `/proc/self/ns/${type}`;
    return Number(t.syscall(`open ${path}`, NR.openat, AT_FDCWD, t.putString(path), nsf.flags & ~O_CLOEXEC, 0));
  },
};
