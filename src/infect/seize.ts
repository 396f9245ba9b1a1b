/**
 * The seize's second half for many threads of one process at once
 * (Tracee.seizeWait one by one otherwise): every stop collected first,
 * then their rseq areas read together (rseq.ts `abortRseqAtStops`: one
 * process_vm_readv for the process instead of one per thread), before
 * anything of ours runs in any of them.
 */
import { getGpRegsRaw, ptraceDetachQuiet } from '../sys/index.js';
import { abortRseqAtStops, type RseqAtStop } from './rseq.js';
import { waitForStop } from './stops.js';
import { Tracee } from './tracee.js';

/**
 * Each thread of `tids` (interrupted by Tracee.seizeNoWait, all of one
 * address space) taken, or the error that left it out, in order; a thread
 * left out is detached.
 */
export function seizeWaitEach(tids: readonly number[], timeoutMs: number, selfCure: boolean): (Tracee | { error: unknown })[] {
  const out: (Tracee | { error: unknown })[] = [];
  const stopped: { tid: number; regs: Buffer; stopSignal: number; stashed: Buffer[]; at: number }[] = [];
  for (const tid of tids) {
    try {
      const { stopSignal, stashed } = waitForStop(tid, timeoutMs);
      stopped.push({ tid, regs: getGpRegsRaw(tid), stopSignal, stashed, at: out.length });
      out.push({ error: undefined }); // its Tracee, below
    } catch (error) {
      ptraceDetachQuiet(tid);
      out.push({ error });
    }
  }
  let rseq: (RseqAtStop | undefined)[];
  try {
    rseq = abortRseqAtStops(stopped);
  } catch (error) {
    // A thread whose registers could not be moved to its abort handler: as seizeWait, none is taken.
    for (const s of stopped) {
      ptraceDetachQuiet(s.tid);
      out[s.at] = { error };
    }
    return out;
  }
  stopped.forEach((s, k) => {
    out[s.at] = Tracee.taken(s, rseq[k], selfCure);
  });
  return out;
}
