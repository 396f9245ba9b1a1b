/** Threads and children of a task, and the whole process tree below a root. */
import { existsSync, readdirSync } from 'node:fs';
import { isCriuTsError } from '../errors.js';
import { procError, readProcText } from './read.js';

export function listThreads(pid: number): number[] {
  const dir = `/proc/${pid}/task`;
  try {
    return readdirSync(dir).map(Number).sort((a, b) => a - b);
  } catch (e) {
    throw procError(pid, dir, e);
  }
}

/** Children of every thread: a child belongs to the thread that forked it, so one children file is not enough. */
export function listChildren(pid: number, tids: readonly number[] = listThreads(pid)): number[] {
  const set = new Set<number>();
  for (const tid of tids) {
    let text: string;
    try {
      text = readProcText(pid, `/proc/${pid}/task/${tid}/children`);
    } catch (e) {
      // A thread that exited between listing and reading has no children to report.
      if (isCriuTsError(e) && e.code === 'ENOTASK' && existsSync(`/proc/${pid}`)) continue;
      throw e;
    }
    for (const s of text.split(' ')) if (s.trim() !== '') set.add(Number(s));
  }
  return [...set].sort((a, b) => a - b);
}

/** Breadth-first pids from rootPid (root first). */
export function walkTree(rootPid: number): number[] {
  const out: number[] = [rootPid];
  const seen = new Set<number>(out);
  for (let i = 0; i < out.length; i++) {
    const pid = out[i];
    if (pid === undefined) break;
    let kids: number[];
    try {
      kids = listChildren(pid);
    } catch (e) {
      // A child may die while we walk; the root must exist.
      if (pid !== rootPid && isCriuTsError(e) && e.code === 'ENOTASK') continue;
      throw e;
    }
    for (const k of kids) if (!seen.has(k)) { seen.add(k); out.push(k); }
  }
  return out;
}
