/**
 * Looking at whole process trees from the outside, for the tree tests: the
 * descendants of a root, a snapshot of what a restore must keep for each
 * task (parent, group, session, stopped/zombie state, threads and their
 * names), a readable difference between two snapshots, and a cleanup that
 * kills only tasks working in the test's own work dir (a pid from an old
 * snapshot may belong to somebody else by then).
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { waitFor, waitGone } from './helpers.js';

export interface TaskView {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** 'T' stopped, 'Z' zombie, 'run' for anything else (R, S, D are timing) */
  state: string;
  /** thread names in tid order */
  threads: string[];
}

interface Stat {
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
}

export function statOf(pid: number): Stat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '?', ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]) };
  } catch {
    return undefined;
  }
}

/** The kernel's one-letter state of pid ('' when gone). */
export function stateOf(pid: number): string {
  return statOf(pid)?.state ?? '';
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim().split(/\s+/)) {
        if (c !== '') out.push(Number(c));
      }
    } catch {
      // thread gone
    }
  }
  return out;
}

/** root and every descendant, parents first. */
export function descendants(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i] as number));
  return out;
}

function threadNames(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .sort((a, b) => a - b)
      .map((tid) => {
        try {
          return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        } catch {
          return '?';
        }
      });
  } catch {
    return [];
  }
}

/** What a restore must keep of each task of the tree under root. */
export function snapshot(root: number): TaskView[] {
  const out: TaskView[] = [];
  for (const pid of descendants(root)) {
    const st = statOf(pid);
    if (st === undefined) continue;
    const state = st.state === 'T' || st.state === 't' ? 'T' : st.state === 'Z' ? 'Z' : 'run';
    out.push({ pid, ppid: st.ppid, pgid: st.pgid, sid: st.sid, state, threads: state === 'Z' ? [] : threadNames(pid) });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Differences between two snapshots, one line each ([] when alike); the root's parent is not compared. */
export function diffSnapshots(before: TaskView[], after: TaskView[], root: number): string[] {
  const out: string[] = [];
  const byPid = new Map(after.map((t) => [t.pid, t]));
  for (const b of before) {
    const a = byPid.get(b.pid);
    if (a === undefined) {
      out.push(`task ${b.pid} missing`);
      continue;
    }
    byPid.delete(b.pid);
    for (const k of ['ppid', 'pgid', 'sid', 'state'] as const) {
      if (k === 'ppid' && b.pid === root) continue;
      if (a[k] !== b[k]) out.push(`task ${b.pid}: ${k} ${String(a[k])}, was ${String(b[k])}`);
    }
    if (a.threads.join(',') !== b.threads.join(',')) {
      out.push(`task ${b.pid}: ${a.threads.length} thread(s) [${summary(a.threads)}], were ${b.threads.length} [${summary(b.threads)}]`);
    }
  }
  for (const extra of byPid.keys()) out.push(`task ${extra} is new`);
  return out;
}

function summary(names: string[]): string {
  return names.length <= 10 ? names.join(',') : `${names.slice(0, 5).join(',')},...,${names.slice(-3).join(',')}`;
}

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

/**
 * SIGKILL every listed or descendant task whose cwd is workDir (ours for
 * sure), SIGCONT in case it was stopped, and wait for them to vanish,
 * reaping those that fell to us as subreaper.
 */
export async function killTree(pids: readonly number[], workDir: string): Promise<void> {
  const all = new Set<number>();
  for (const p of pids) for (const d of descendants(p)) all.add(d);
  const ours = [...all].filter((p) => cwdOf(p) === workDir || stateOf(p) === 'Z');
  for (const p of ours) {
    if (stateOf(p) === 'Z') continue;
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const p of ours) await waitGone(p, 5000);
}

/**
 * The pids that still exist after timeoutMs; [] when all are gone. Zombies
 * that fell to us are reaped on the way, except those in leaveToNode: a
 * subject's root is Node's own child, and Node must reap it itself, or its
 * child handle stays behind and later steals the status of the restored
 * task that gets the same pid.
 */
export async function allGone(pids: readonly number[], leaveToNode: readonly number[] = [], timeoutMs = 15_000): Promise<number[]> {
  const left: number[] = [];
  for (const p of pids) {
    const gone = leaveToNode.includes(p)
      ? await waitFor(() => !existsSync(`/proc/${p}`), timeoutMs)
      : await waitGone(p, timeoutMs);
    if (!gone) left.push(p);
  }
  return left;
}
