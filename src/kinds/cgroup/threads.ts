/**
 * Which threads of a process are in all of its main thread's cgroups, from
 * each of those cgroups' own thread list (v1 `tasks`, v2 `cgroup.threads`:
 * every thread in that cgroup, by tid as we see it), instead of each
 * thread's /proc/PID/task/TID/cgroup. This machine has ten v1 hierarchies,
 * and the kernel formats every one of them in each thread's file (23-85 us
 * a read): a 1000-thread dump read 1,000 of them, where the lists are ten
 * reads. A thread in every one of the main thread's cgroups has the main
 * thread's cgroup file, line for line: the file has one line per
 * hierarchy, each naming the thread's cgroup there.
 *
 * The lists are read through the hierarchies' mounts in our own mount
 * table (a whole hierarchy mounted from its root, as /sys/fs/cgroup/* is):
 * a detached mount of each (hierarchies.ts) cost more than the thread
 * files it saved (27 ms for ten). Without such a mount, the thread files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountinfo } from '../../proc/index.js';
import type { CgMember } from './model.js';

/** Below this many threads the threads' own files are read: as cheap as the lists. */
export const LISTS_FROM_THREADS = 32;

/**
 * The tids of `tids` in every cgroup of `main` (the main thread's members,
 * every line of its file); undefined when a list cannot be read (no
 * hierarchy of ours to reach it, say): the caller then reads each thread's
 * file as before.
 */
export function threadsInAll(main: readonly CgMember[], tids: readonly number[]): Set<number> | undefined {
  const seen = new Map<number, number>();
  for (const t of tids) seen.set(t, 0);
  let mounts: { fstype: string; root: string; mountpoint: string; superOptions: string }[];
  try {
    mounts = parseMountinfo(process.pid);
  } catch {
    return undefined;
  }
  for (const m of main) {
    const at = mountOf(mounts, m.name);
    if (at === undefined) return undefined;
    let text: string;
    try {
      text = readFileSync(join(at, m.path, m.name === '' ? 'cgroup.threads' : 'tasks'), 'latin1');
    } catch {
      return undefined;
    }
    countListed(text, seen);
  }
  const out = new Set<number>();
  for (const [t, n] of seen) if (n === main.length) out.add(t);
  return out;
}

/**
 * Where the hierarchy /proc calls `name` ("cpu,cpuacct", "name=systemd",
 * "" for v2) is mounted whole in our mount table: a cgroup mount of its
 * root whose options name every part of `name` (a v1 hierarchy's options
 * list its controllers and its name=), or a cgroup2 one.
 */
function mountOf(mounts: readonly { fstype: string; root: string; mountpoint: string; superOptions: string }[], name: string): string | undefined {
  const parts = name.split(',');
  for (const mt of mounts) {
    if (mt.root !== '/') continue;
    if (name === '' ? mt.fstype === 'cgroup2' : mt.fstype === 'cgroup' && parts.every((p) => mt.superOptions.split(',').includes(p))) return mt.mountpoint;
  }
  return undefined;
}

/** One count more for each tid of `seen` the list (one decimal tid a line) holds. */
function countListed(text: string, seen: Map<number, number>): void {
  let v = 0;
  let digits = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      digits = true;
      continue;
    }
    if (digits) bump(seen, v);
    v = 0;
    digits = false;
  }
  if (digits) bump(seen, v);
}

function bump(seen: Map<number, number>, tid: number): void {
  const n = seen.get(tid);
  if (n !== undefined) seen.set(tid, n + 1);
}
