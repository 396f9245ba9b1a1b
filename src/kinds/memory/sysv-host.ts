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
 * (kinds/ns/ipc-dump.ts). Every attachment, of either namespace, is made
 * again here too (attachSysvShm).
 */
import { listShm, NR, PAGE_SIZE, SHM_DEST, type ShmStat } from '../../sys/index.js';
import { SHM_RDONLY, SHM_EXEC } from '../../sys/ipc.js';
import { PROT_WRITE } from '../../sys/mman.js';
import { inOwnNs, parseMaps } from '../../proc/index.js';
import { CriuTsError } from '../../errors.js';
import type { VmaEntry } from '../../images/messages.js';
import type { RestoreTaskHandle } from '../types.js';

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

/**
 * SysV shm attachments (VMA_AREA_SYSVIPC; shmid is the segment's id, which
 * the ipc kind re-created in the task's new ipc namespace, or the segment
 * of criu-ts's own namespace the dump left in place). VMAs of one
 * attachment share its address (start - pgoff): one injected shmat there,
 * read-only unless one of them was writable (fdflags O_RDWR), executable if
 * one is; then the parts of the segment the task had unmapped go again and
 * every VMA gets its own protection. The contents are the segment's own.
 */
export function attachSysvShm(t: RestoreTaskHandle, vmas: readonly VmaEntry[]): void {
  if (vmas.length === 0) return;
  // In criu-ts's own ipc namespace the dump's segment was left in place (sysv-host.ts): it must still be there.
  const host = sameIpcNamespace(t.pid);
  const groups = new Map<string, VmaEntry[]>();
  for (const v of vmas) {
    const key = `${v.shmid}@${v.start - v.pgoff}`;
    groups.set(key, [...(groups.get(key) ?? []), v]);
  }
  for (const group of groups.values()) {
    const first = group[0] as VmaEntry;
    const base = first.start - first.pgoff;
    if (host) checkHostSegmentAtRestore(t.pid, first.shmid, base, group.reduce((e, v) => (v.end > e ? v.end : e), base));
    const writable = group.some((v) => v.fdflags === undefined || (v.fdflags & 3) === 2 /* O_RDWR */);
    const exec = group.some((v) => (v.prot & 4 /* PROT_EXEC */) !== 0);
    const flags = (writable ? 0 : SHM_RDONLY) | (exec ? SHM_EXEC : 0);
    const at = t.syscall(`shmat(${first.shmid})`, NR.shmat, first.shmid, base, flags);
    if (at !== base) throw new CriuTsError('ERESTORE', `task ${t.pid}: SysV shm ${first.shmid} attached at 0x${at.toString(16)}, not 0x${base.toString(16)}`, { pid: t.pid });
    // The attachment as the kernel made it (the segment's size, rounded up to pages).
    const att = parseMaps(t.pid).find((m) => m.start === base);
    const end = att?.end ?? base;
    let cur = base;
    for (const v of [...group].sort((a, b) => (a.start < b.start ? -1 : 1))) {
      if (v.start > cur) t.syscall('munmap(shm hole)', NR.munmap, cur, v.start - cur);
      cur = v.end > cur ? v.end : cur;
    }
    if (end > cur) t.syscall('munmap(shm tail)', NR.munmap, cur, end - cur);
    const attProt = 1 | (writable ? PROT_WRITE : 0) | (exec ? 4 : 0);
    for (const v of group) {
      if (v.prot !== attProt) t.syscall('mprotect(shm)', NR.mprotect, v.start, v.end - v.start, v.prot);
    }
  }
}

/** Whether task `pid` is in criu-ts's own ipc namespace. */
function sameIpcNamespace(pid: number): boolean {
  return inOwnNs(pid, 'ipc') === true;
}
