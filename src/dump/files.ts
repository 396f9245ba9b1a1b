/**
 * Open files of one task: each fd becomes an fdinfo entry pointing to a
 * file_entry in the global files table. Open file descriptions shared
 * between fds (dup, fork) are found with kcmp(KCMP_FILE) and written once.
 * The fd itself is copied into our process with pidfd_getfd so kinds can
 * fstat/peek it from our side without touching the task.
 */
import { fstatSync } from 'node:fs';
import { listFds, readFdLink, parseFdinfo } from '../proc/index.js';
import { pidfdOpen, pidfdGetfd, closeQuiet, kcmp, KCMP, getsockoptInt } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { fileKindFor, stateKey, type FdProbe } from '../kinds/index.js';
import type { DumpSession } from './context.js';
import type { FdinfoEntry } from '../images/messages.js';
import { logger } from '../log.js';

const log = logger('files');
const O_CLOEXEC = 0o2000000;
const FD_CLOEXEC = 1;

/** An open file description already dumped, by a representative (pid, fd). */
interface Seen {
  pid: number;
  fd: number;
  ino: bigint;
  id: number;
}

const SEEN = stateKey<Seen[]>('files:seen');

/** The fdinfo entries of task `pid` (in net namespace `netNsId`); new open files go into the dump's files table. */
export function dumpFds(pid: number, ctx: DumpSession, netNsId: number | undefined): FdinfoEntry[] {
  const out: FdinfoEntry[] = [];
  const seen = ctx.memo(SEEN, () => []);
  const pidfd = pidfdOpen(pid);
  try {
    for (const fd of listFds(pid)) {
      const link = readFdLink(pid, fd);
      const fdinfo = parseFdinfo(pid, fd);
      const flags = fdinfo.flags & O_CLOEXEC ? FD_CLOEXEC : 0;
      const same = seen.find((s) => s.ino === fdinfo.ino && sameFile(s.pid, s.fd, pid, fd));
      if (same) {
        out.push({ id: same.id, flags, type: ctx.fileById(same.id)?.type ?? 'REG', fd });
        continue;
      }
      const localFd = pidfdGetfd(pidfd, fd, pid);
      try {
        const probe: FdProbe = { pid, fd, link, fdinfo, stat: fstatSync(localFd), localFd, netNsId };
        const kind = fileKindFor(probe);
        if (!kind) {
          const what = describeUnknown(probe);
          throw new CriuTsError('EUNSUPPORTED', `task ${pid} fd ${fd}: ${link}${what}: this kind of file is not supported`, { pid, fd, link });
        }
        const id = ctx.addFile((i) => kind.dump(probe, i, ctx));
        seen.push({ pid, fd, ino: fdinfo.ino, id });
        log.debug(`task ${pid} fd ${fd}: ${kind.name} id ${id} (${link})`);
        out.push({ id, flags, type: kind.type, fd });
      } finally {
        closeQuiet(localFd);
      }
    }
  } finally {
    closeQuiet(pidfd);
  }
  return out;
}

function sameFile(pid1: number, fd1: number, pid2: number, fd2: number): boolean {
  try {
    return kcmp(pid1, pid2, KCMP.FILE, fd1, fd2) === 0;
  } catch {
    return false;
  }
}

const FAMILIES: Readonly<Record<number, string>> = {
  1: 'unix', 2: 'inet', 10: 'inet6', 16: 'netlink', 17: 'packet', 38: 'alg', 40: 'vsock', 44: 'xdp',
};
const SOCK_TYPES: Readonly<Record<number, string>> = { 1: 'stream', 2: 'dgram', 3: 'raw', 4: 'rdm', 5: 'seqpacket', 10: 'packet' };

/** A few words on what an unsupported fd is, for the refusal line (e.g. " (netlink raw socket)"). */
function describeUnknown(p: FdProbe): string {
  if (!p.link.startsWith('socket:')) return '';
  try {
    const fam = getsockoptInt(p.localFd, 1 /* SOL_SOCKET */, 39 /* SO_DOMAIN */);
    const type = getsockoptInt(p.localFd, 1, 3 /* SO_TYPE */);
    return ` (${FAMILIES[fam] ?? `family ${fam}`} ${SOCK_TYPES[type] ?? `type ${type}`} socket)`;
  } catch {
    return '';
  }
}
