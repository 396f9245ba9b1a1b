/**
 * /proc/PID/limits: the only way to read another task's rlimits here (root
 * lacks CAP_SYS_RESOURCE, so prlimit on a foreign task is not an option).
 */
import { lines, parseError, readProcText } from './read.js';

export const RLIM_INFINITY = 2n ** 64n - 1n;

/** Kernel RLIMIT_* numbers are the array indexes; the text names are how /proc spells them. */
export const RLIMIT_NAMES: readonly string[] = [
  'Max cpu time', 'Max file size', 'Max data size', 'Max stack size', 'Max core file size',
  'Max resident set', 'Max processes', 'Max open files', 'Max locked memory', 'Max address space',
  'Max file locks', 'Max pending signals', 'Max msgqueue size', 'Max nice priority',
  'Max realtime priority', 'Max realtime timeout',
];

export interface RLimit {
  soft: bigint;
  hard: bigint;
}

/** Index i is RLIMIT number i (CPU=0 ... RTTIME=15). */
export function parseLimits(pid: number): RLimit[] {
  const file = `/proc/${pid}/limits`;
  const out: (RLimit | undefined)[] = new Array<RLimit | undefined>(RLIMIT_NAMES.length).fill(undefined);
  const val = (s: string, line: string): bigint => {
    if (s === 'unlimited') return RLIM_INFINITY;
    if (!/^[0-9]+$/.test(s)) throw parseError(file, line, 'bad limit');
    return BigInt(s);
  };
  for (const line of lines(readProcText(pid, file)).slice(1)) {
    // Columns: name padded to 26, soft padded to 21, hard padded to 21, units.
    const name = line.slice(0, 26).trim();
    const idx = RLIMIT_NAMES.indexOf(name);
    if (idx < 0) continue; // a resource newer than this table: ignore, not fatal
    const cols = line.slice(26).trim().split(/\s+/);
    out[idx] = { soft: val(cols[0] ?? '', line), hard: val(cols[1] ?? '', line) };
  }
  return out.map((l, i) => {
    if (l === undefined) throw parseError(file, RLIMIT_NAMES[i] ?? String(i), 'missing limit');
    return l;
  });
}
