/**
 * The smaps of a frozen tree's big tasks, read on a worker thread while
 * the tree is asked its questions (proc/maps.ts prefetchSmaps): reading a
 * big task's smaps is mostly the kernel walking its page tables (8 ms of a
 * 1 GiB task's final dump of 40-50 ms on the benchmark VM), which then
 * overlaps the questions' injected round trips instead of following them.
 * The memory dump checks each against /proc/PID/maps before using it.
 */
import { prefetchSmaps, residentBytes } from '../proc/index.js';

/** Below this much resident memory a task's smaps costs the kernel little: read as before. */
const BIG_TASK_BYTES = 16 << 20;
/** At most this many reads at once (each holds a buffer until it is used). */
const MAX_TASKS = 8;

/** Start reading the smaps of the biggest tasks of `pids` (all stopped); await the map pid → bytes once they are asked. */
export function smapsAhead(pids: readonly number[]): Promise<Map<number, Buffer>> {
  const big: { pid: number; rss: number }[] = [];
  for (const pid of pids) {
    let rss: number;
    try {
      rss = residentBytes(pid);
    } catch {
      continue; // the memory dump reads it and says why
    }
    if (rss >= BIG_TASK_BYTES) big.push({ pid, rss });
  }
  big.sort((a, b) => b.rss - a.rss);
  const reads = big.slice(0, MAX_TASKS).map(({ pid }) => prefetchSmaps(pid).then((bytes) => [pid, bytes] as const));
  return Promise.all(reads).then((all) => {
    const out = new Map<number, Buffer>();
    for (const [pid, bytes] of all) if (bytes !== undefined) out.set(pid, bytes);
    return out;
  });
}
