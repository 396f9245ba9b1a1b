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

export interface Piece {
  at: bigint;
  data: Buffer;
}

/** Write every piece into `t`'s address space; throws when one cannot be written. */
export function writeMemEach(t: HeldTask, pieces: readonly Piece[]): void {
  if (pieces.length === 0) return;
  const all = pieces.length === 1 ? (pieces[0] as Piece).data : Buffer.concat(pieces.map((p) => p.data));
  let n = 0;
  try {
    n = processVmWritev(t.tid, all, 0, pieces.map((p) => ({ addr: p.at, len: p.data.length })));
  } catch {
    n = 0;
  }
  if (n === all.length) return;
  for (const p of pieces) t.writeMem(p.at, p.data);
}
