/**
 * SysV shm segments of criu-ts's own ipc namespace that a task has attached
 * (PostgreSQL's interlock segment is the common case): kernel objects that
 * outlive the tree, as a file on disk does. As CRIU does for a tree in the
 * host's ipc namespace, the attachment is recorded by the segment's id
 * (VMA_AREA_SYSVIPC) and attached again at restore to the very segment,
 * whose contents are its own and are not saved. A segment id is its slot
 * and a sequence number the kernel bumps at every reuse of the slot, so a
 * segment removed and made again does not pass for the old one.
 *
 * Known limits: a segment marked for removal (IPC_RMID) ends with the last
 * attachment, which the dump kills, so it is refused at dump; a restore
 * where the segment is gone (another machine, a reboot, removed meanwhile)
 * or smaller than the attachment is refused before the task is attached.
 * A tree in an ipc namespace of its own takes its segments along instead
 * (kinds/ns/ipc-dump.ts).
 */
import { listShm, PAGE_SIZE, SHM_DEST, type ShmStat } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';

function segment(id: bigint): ShmStat | undefined {
  return listShm().find((s) => BigInt(s.id) === id);
}

/** At dump: the segment behind an attachment at `start` will still be there once the tree is gone. */
export function checkHostSegmentAtDump(pid: number, start: bigint, shmid: bigint): void {
  const s = segment(shmid);
  const what = `task ${pid}: mapping 0x${start.toString(16)}: SysV shm segment ${shmid} of criu-ts's own ipc namespace`;
  if (s === undefined) {
    throw new CriuTsError('EUNSUPPORTED', `${what} is not among the namespace's segments (it was removed while attached)`, { pid, shmid });
  }
  if ((s.perm.mode & SHM_DEST) !== 0) {
    throw new CriuTsError('EUNSUPPORTED', `${what} is marked for removal (IPC_RMID): it ends with its last attachment, so it cannot be attached again after the dump (a tree in an ipc namespace of its own takes its segments along)`, { pid, shmid });
  }
}

/**
 * At restore, in criu-ts's own ipc namespace: the segment is there and
 * covers the attachment's VMAs (from `base`, up to `end`).
 */
export function checkHostSegmentAtRestore(pid: number, shmid: bigint, base: bigint, end: bigint): void {
  const s = segment(shmid);
  const what = `task ${pid}: SysV shm segment ${shmid} attached at 0x${base.toString(16)}`;
  if (s === undefined) {
    throw new CriuTsError('ERESTORE', `${what}: no such segment in criu-ts's ipc namespace (the dump attached the host's segment, whose contents are not in the images: it must still exist where the tree is restored)`, { pid, shmid });
  }
  const page = BigInt(PAGE_SIZE);
  const covered = ((s.size + page - 1n) / page) * page;
  if (end - base > covered) {
    throw new CriuTsError('ERESTORE', `${what}: the segment is ${s.size} bytes, smaller than the ${end - base} bytes the task had attached`, { pid, shmid });
  }
}
