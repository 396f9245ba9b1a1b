/**
 * The smaps of a frozen tree's big tasks, read on a worker thread once the
 * tree's questions are asked, while its cores and the kinds' images are
 * encoded and written (proc/maps.ts prefetchSmaps): reading a big task's
 * smaps is mostly the kernel walking its page tables (8 ms of a 1 GiB
 * task's final dump of 40-50 ms on the benchmark VM), which then overlaps
 * our own work instead of following it. Not earlier: the walk holds the
 * task's mmap lock for a whole VMA, and injected calls that take it for
 * writing wait (started before the questions, it made a 1 GiB task's
 * first call, the scratch mmap, take 25 ms instead of 9, and brk(0) and
 * the rest of the questions 28 instead of 4). Each task's memory dump
 * waits for its own read and checks it against /proc/PID/maps.
 */
import { prefetchSmaps, residentBytes } from '../proc/index.js';

/** Below this much resident memory a task's smaps costs the kernel little: read as before. */
const BIG_TASK_BYTES = 16 << 20;
/** At most this many reads at once (each holds a buffer until it is used). */
const MAX_TASKS = 8;

/** Start reading the smaps of the biggest tasks of `pids` (all stopped): pid → its read, to await before its memory dump. */
export function smapsAhead(pids: readonly number[]): Map<number, Promise<Buffer | undefined>> {
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
  return new Map(big.slice(0, MAX_TASKS).map(({ pid }) => [pid, prefetchSmaps(pid)]));
}
