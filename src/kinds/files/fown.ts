/**
 * The owner of an open file description (fcntl F_SETOWN/F_SETOWN_EX and
 * F_SETSIG): who gets SIGIO/SIGURG and with which signal. CRIU's fown_t,
 * carried by every file entry. Read on our pidfd_getfd copy, which shares
 * the description; the owner's uid/euid (recorded when it was set) come
 * from F_GETOWNER_UIDS. Restored inside the task: F_SETSIG, then, under
 * the recorded uid/euid for the length of one call, F_SETOWN_EX.
 * Limits: the owner pid is taken as is (same pid namespace).
 */
import { fcntl, fcntlGetOwnerEx, fcntlGetOwnerUids, NR, PR, O_PATH, F_SETOWN_EX, F_SETSIG, F_GETSIG } from '../../sys/index.js';
import type { FownEntry, FileEntry } from '../../images/messages.js';
import type { DumpContext, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { INVALID_ID, treeUid } from '../ns/user.js';

/**
 * The owner every kind writes into its entry's `fown`: none. The real one
 * (F_SETOWN/F_SETSIG) is the core's to read and put in (dump/files.ts,
 * withFown) and to set again (restore/files.ts, restoreFown).
 */
export const NO_FOWN: FownEntry = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };


/** The description's owner, or undefined when nothing was set. */
export function readFown(localFd: number, flags: number): FownEntry | undefined {
  if (flags & O_PATH) return undefined;
  const signum = fcntl(localFd, F_GETSIG);
  const owner = fcntlGetOwnerEx(localFd);
  if (owner.pid === 0 && signum === 0) return undefined;
  const uids = owner.pid === 0 ? { uid: 0, euid: 0 } : fcntlGetOwnerUids(localFd);
  return { uid: uids.uid, euid: uids.euid, signum, pid_type: owner.type, pid: owner.pid };
}

/**
 * The owner's uid/euid as the dumped tree sees them (F_GETOWNER_UIDS
 * answers in ours): the restore sets them from inside the task. An id
 * with no mapping in the tree's user namespace could not be set there:
 * refused with one line.
 */
export function fownUidsAsSeen(fown: FownEntry, ctx: DumpContext, where: string): FownEntry {
  const uid = treeUid(ctx, fown.uid);
  const euid = treeUid(ctx, fown.euid);
  if (uid === INVALID_ID || euid === INVALID_ID) {
    throw new CriuTsError('EUNSUPPORTED', `${where}: its owner (F_SETOWN) was set by uid ${fown.uid}/${fown.euid}, which has no mapping in the tree's user namespace`, { uid: fown.uid, euid: fown.euid });
  }
  return { ...fown, uid, euid };
}

/** Put `fown` into the entry's own message (every CRIU file message has one). */
export function withFown(entry: FileEntry, fown: FownEntry | undefined, where: string): FileEntry {
  if (!fown) return entry;
  for (const v of Object.values(entry)) {
    if (v !== null && typeof v === 'object' && 'fown' in v) {
      (v as { fown: FownEntry }).fown = fown;
      return entry;
    }
  }
  throw new CriuTsError('EUNSUPPORTED', `${where}: a file owner (F_SETOWN/F_SETSIG) on a ${entry.type} file cannot be saved`, { type: entry.type });
}

/** The fown of an entry's own message, if any. */
export function fownOf(entry: FileEntry): FownEntry | undefined {
  for (const v of Object.values(entry)) {
    if (v !== null && typeof v === 'object' && 'fown' in v) return (v as { fown?: FownEntry }).fown;
  }
  return undefined;
}

/** Set the owner and signal of `fd` inside the task (as root: creds come last). */
export function restoreFown(t: RestoreTaskHandle, fd: number, fown: FownEntry | undefined): void {
  if (!fown) return;
  if (fown.signum) t.syscall('fcntl(F_SETSIG)', NR.fcntl, fd, F_SETSIG, fown.signum);
  if (!fown.pid) return;
  // The kernel records the caller's uid/euid with the owner (they decide
  // whether the signal may be sent): set them for this one call, keeping
  // the saved uid 0 so that we can switch back.
  const b = Buffer.alloc(8);
  b.writeInt32LE(fown.pid_type, 0);
  b.writeInt32LE(pidSeenBy(t, fown.pid, 'its file owner (F_SETOWN)'), 4);
  const owner = t.putBytes(b);
  t.syscall('setresuid(fown)', NR.setresuid, fown.uid, fown.euid, -1);
  try {
    t.syscall('fcntl(F_SETOWN_EX)', NR.fcntl, fd, F_SETOWN_EX, owner);
  } finally {
    t.syscall('setresuid(back)', NR.setresuid, 0, 0, -1);
    // An euid change clears the dumpable flag; the task's own comes later.
    t.syscall('prctl(SET_DUMPABLE)', NR.prctl, PR.SET_DUMPABLE, 1);
  }
}

/**
 * A pid of the images (the tree's pid namespace's) as task `t` names it in
 * its own: the same, unless `t` lives in a pid namespace nested below the
 * tree's, where only its own pid (or group) is translated; any other is
 * refused in one line (docs/namespaces.md).
 */
export function pidSeenBy(t: RestoreTaskHandle, pid: number, what: string): number {
  if (t.ownPid === t.vpid || pid === 0) return pid;
  if (pid === t.vpid) return t.ownPid;
  throw new CriuTsError('EUNSUPPORTED', `task ${t.vpid} (pid ${t.ownPid} in its nested pid namespace): ${what} ${pid} is another task's, which criu-ts does not translate into a nested pid namespace`, { pid: t.vpid });
}
