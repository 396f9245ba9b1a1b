/**
 * Object ids as CRIU numbers them: kernel objects shared between tasks
 * (mm, files table, fs, sighand), told apart with kcmp, and namespaces,
 * told apart by inode. ids-PID.img holds a task's.
 */
import type { TaskKobjIdsEntry } from '../images/messages.js';
import { readNsId, readNsIds } from '../proc/index.js';
import { NS_KINDS, NS_ID_FIELD } from '../images/index.js';
import { kcmp, KCMP } from '../sys/index.js';

/**
 * Object ids shared between tasks (mm, files table, fs, sighand), numbered
 * per kind as CRIU does (the dumper's own objects are 1). kcmp orders
 * kernel objects consistently, so each kind's representatives are kept
 * sorted and a task's object is found with a binary search: O(log n) kcmp
 * calls per task instead of one per task already seen.
 */
export class KobjIds {
  private readonly byType = new Map<number, { next: number; reps: { pid: number; id: number }[] }>();
  idOf(type: number, pid: number): number {
    let t = this.byType.get(type);
    if (t === undefined) {
      t = { next: 1, reps: [] };
      this.byType.set(type, t);
    }
    let lo = 0;
    let hi = t.reps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const rep = t.reps[mid] as { pid: number; id: number };
      let order: number;
      try {
        order = kcmp(rep.pid, pid, type);
      } catch {
        return t.next++; // cannot compare (the task is going): an object of its own
      }
      if (order === 0) return rep.id;
      if (order === 3) return this.linear(t, type, pid); // no ordering from this kernel
      // 1: the representative's object sorts before this task's; 2: after
      if (order === 1) lo = mid + 1;
      else hi = mid;
    }
    const id = t.next++;
    t.reps.splice(lo, 0, { pid, id });
    return id;
  }

  private linear(t: { next: number; reps: { pid: number; id: number }[] }, type: number, pid: number): number {
    for (const rep of t.reps) {
      try {
        if (kcmp(rep.pid, pid, type) === 0) return rep.id;
      } catch {
        // gone: not this one
      }
    }
    const id = t.next++;
    t.reps.push({ pid, id });
    return id;
  }
}

/** Namespace ids, numbered in the order the dump meets them (type and inode tell them apart). */
export class NsIds {
  private next = 1;
  private readonly ids = new Map<string, number>();
  idOf(kind: string, ino: number): number {
    const k = `${kind}:${ino}`;
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.next++;
      this.ids.set(k, id);
    }
    return id;
  }
}

export function taskIds(pid: number, kobj: KobjIds, nsIds: NsIds): TaskKobjIdsEntry {
  const ns = readNsIds(pid);
  const ids: TaskKobjIdsEntry = {
    vm_id: kobj.idOf(KCMP.VM, pid),
    files_id: kobj.idOf(KCMP.FILES, pid),
    fs_id: kobj.idOf(KCMP.FS, pid),
    sighand_id: kobj.idOf(KCMP.SIGHAND, pid),
  };
  for (const kind of NS_KINDS) {
    const ino = ns[kind];
    if (ino) (ids as unknown as Record<string, number>)[NS_ID_FIELD[kind]] = nsIds.idOf(kind, ino);
  }
  // A parent `unshare -fp` left behind (dump/namespaces.ts lets it through
  // only when one of its children is that namespace's init).
  if (ns.pid) {
    const next = pidForChildren(pid);
    if (next !== undefined && next !== ns.pid) ids.pid_for_children_ns_id = nsIds.idOf('pid', next);
  }
  return ids;
}

/** The inode of the pid namespace task `pid`'s next children are born in, if it can be read. */
function pidForChildren(pid: number): number | undefined {
  try {
    return readNsId(pid, 'pid_for_children');
  } catch {
    return undefined;
  }
}
