/**
 * A restored process's threads, made in rounds: each thread made so far
 * (the main thread first) makes one more with an injected clone3 with
 * CLONE_THREAD and set_tid, all of a round's calls side by side
 * (infect/side-by-side.ts). 999 threads take 10 rounds instead of 999
 * round trips one after another.
 *
 * A new thread copies the per-thread state of the thread that made it
 * (signal mask, comm, timer slack, credentials, seccomp, affinity). Every
 * maker is itself a copy of the main thread, made before any thread's own
 * state is set (threadStateSteps and the credentials come later, for each
 * thread), so each thread starts as it did when the main thread made all
 * of them. A new thread runs on its maker's registers: our injected calls
 * never touch its stack. Its clear_child_tid address is given at birth
 * (CLONE_CHILD_CLEARTID): no set_tid_address per thread later. The main
 * thread's signal mask is HELD_SIGMASK when it is called: every thread is
 * born with it, and blocks no signals of its own.
 */
import { NR, CLONE_ARGS_SIZE } from '../sys/index.js';
import type { Tracee } from '../infect/tracee.js';
import { syscallEachSettled } from '../infect/side-by-side.js';
import { adoptClone, cloneArgs, cloneSlotBytes } from './stub.js';

const CLONE_THREAD_FLAGS = 0x100n | 0x200n | 0x400n | 0x800n | 0x10000n | 0x40000n; // VM FS FILES SIGHAND THREAD SYSVSEM

/**
 * Make threads `tids` (in that order; each its set_tid, innermost first:
 * stub.ts setTidOf) in the process of `main`, which has its scratch area;
 * `made` receives each thread as soon as it exists (so a failure leaves
 * every made thread where the caller kills it). `ourNs`: the tids' last
 * level is ours (not that of a new pid namespace). `clearTids[i]`: thread
 * i's clear_child_tid address (0: none).
 */
export function createThreads(main: Tracee, tids: readonly (readonly number[])[], clearTids: readonly bigint[], ourNs: boolean, made: Tracee[]): void {
  const scratch = main.scratchRange ?? { addr: main.mapScratch(), size: 1 << 16 };
  // Every thread of a process lives at the same depth: one slot size.
  const slot = cloneSlotBytes(Math.max(1, ...tids.map((t) => t.length)));
  const slots = Math.max(1, Math.floor(scratch.size / slot));
  const makers: Tracee[] = [main];
  let next = 0;
  while (next < tids.length) {
    const round = makers.slice(0, Math.min(makers.length, tids.length - next, slots));
    const args = Buffer.concat(round.map((_, k) => {
      const at = scratch.addr + BigInt(k * slot);
      const a = cloneArgs(at, CLONE_THREAD_FLAGS, 0, tids[next + k] ?? [], clearTids[next + k] ?? 0n);
      return Buffer.concat([a, Buffer.alloc(slot - a.length)]);
    }));
    main.writeMem(scratch.addr, args);
    for (const m of round) m.events.length = 0;
    const results = syscallEachSettled(round.map((m, k) => ({
      t: m, nr: NR.clone3, args: [scratch.addr + BigInt(k * slot), CLONE_ARGS_SIZE],
    })));
    // Every thread a call made is adopted before the first failure is thrown.
    let failure: unknown;
    results.forEach((r, k) => {
      if (!r.ok) {
        failure ??= r.error;
        return;
      }
      try {
        const th = adoptClone(round[k] as Tracee, r.value, tids[next + k] ?? [], ourNs, true);
        th.shareScratch(scratch);
        made.push(th);
        makers.push(th);
      } catch (e) {
        failure ??= e;
      }
    });
    if (failure !== undefined) throw failure;
    next += round.length;
  }
}
