/**
 * /proc/PID/timens_offsets: the offsets of CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME in the time namespace PID's next children are born in
 * (time_for_children), one line a clock: "name seconds nanoseconds", the
 * seconds signed. A kernel without time namespaces has no such file: no
 * offsets.
 */
import { existsSync } from 'node:fs';
import { lines, parseError, readProcText } from './read.js';

export interface TimensOffsets {
  /** CLOCK_MONOTONIC's offset, in ns. */
  monotonic: bigint;
  /** CLOCK_BOOTTIME's offset, in ns. */
  boottime: bigint;
}

const NS_PER_SEC = 1_000_000_000n;

/** The file's text; lines of clocks it does not know (a newer kernel's) are passed over. */
export function parseTimensOffsetsText(text: string, file: string): TimensOffsets {
  const out: TimensOffsets = { monotonic: 0n, boottime: 0n };
  for (const line of lines(text)) {
    const m = /^(\S+)\s+(-?\d+)\s+(\d+)$/.exec(line.trim());
    if (m === null) throw parseError(file, line, 'bad timens_offsets line');
    const name = m[1];
    if (name === 'monotonic' || name === 'boottime') out[name] = BigInt(m[2] as string) * NS_PER_SEC + BigInt(m[3] as string);
  }
  return out;
}

/** The offsets of `pid`'s children's time namespace (zeros where the kernel has no time namespaces). */
export function readTimensOffsets(pid: number | 'self'): TimensOffsets {
  const file = `/proc/${pid}/timens_offsets`;
  if (!existsSync(file) && existsSync(`/proc/${pid}`)) return { monotonic: 0n, boottime: 0n };
  return parseTimensOffsetsText(readProcText(pid === 'self' ? process.pid : pid, file), file);
}
