/**
 * Pieces of one address space written with one process_vm_writev instead
 * of one each: the self-cure frames of a process's threads, which lie side
 * by side in its scratch area (dump/ask.ts armTree: a 1000-thread dump made
 * 1,000 such writes). Where that call writes less than all of it (a piece
 * the kernel cannot reach that way), each piece goes alone through
 * writeMem, which falls back to /proc/PID/mem.
 */
import { processVmWritev } from '../sys/index.js';
import type { HeldTask } from './held-task.js';

/** Write `local`'s bytes, back to back, to `ranges` of `t`'s address space; throws when one cannot be written. */
export function writeMemEach(t: HeldTask, local: Buffer, ranges: readonly { addr: bigint; len: number }[]): void {
  const total = ranges.reduce((n, r) => n + r.len, 0);
  if (total === 0) return;
  let n = 0;
  try {
    n = processVmWritev(t.tid, local, 0, ranges);
  } catch {
    n = 0;
  }
  if (n === total) return;
  let off = 0;
  for (const r of ranges) {
    t.writeMem(r.addr, local.subarray(off, off + r.len));
    off += r.len;
  }
}
