/**
 * One injected syscall in each of many tasks, run side by side. An
 * injected call costs two ptrace stops, and most of its time is the wait
 * for the task to be scheduled and reach each stop. Resuming every task
 * into its call before waiting for the first lets those waits overlap: by
 * the time we wait for a task, it has usually stopped already. A dump of a
 * 1000-thread process asks each thread five such questions.
 *
 * Every call that was started is collected, even when another fails, so no
 * task is ever left running our injected call; the first failure is thrown
 * afterwards.
 */
import { CriuTsError } from '../errors.js';
import type { Tracee } from './tracee.js';

type Arg = number | bigint;

export interface SideCall {
  t: Tracee;
  nr: number;
  args: readonly Arg[];
}

/** Raw (signed) results, in the order of `calls`; each task appears at most once. */
export function syscallEach(calls: readonly SideCall[]): bigint[] {
  const settled = syscallEachSettled(calls);
  const failed = settled.find((r) => !r.ok);
  if (failed !== undefined && !failed.ok) throw failed.error;
  return settled.map((r) => (r.ok ? r.value : 0n));
}

export type Settled = { ok: true; value: bigint } | { ok: false; error: unknown };

/**
 * syscallEach that never throws for one call: each call's result or
 * error. For calls whose result must never be lost (an mmap whose area
 * would otherwise stay behind in the task).
 */
export function syscallEachSettled(calls: readonly SideCall[]): Settled[] {
  const seen = new Set<Tracee>();
  for (const c of calls) {
    if (seen.has(c.t)) throw new CriuTsError('EINFECT', `task ${c.t.tid}: two side-by-side calls at once`, { pid: c.t.tid });
    seen.add(c.t);
  }
  const out: Settled[] = new Array<Settled>(calls.length);
  let pending: number[] = [];
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i] as SideCall;
    try {
      c.t.syscallBegin(c.nr, c.args);
      pending.push(i);
    } catch (e) {
      out[i] = { ok: false, error: e };
      // The error (and its stack) is made only when some call is really left out.
      const notRun = new CriuTsError('EINFECT', 'not run: an earlier side-by-side call failed to start', {});
      for (let k = i + 1; k < calls.length; k++) out[k] = { ok: false, error: notRun };
      break;
    }
  }
  // Round robin: each pass takes every task one stop further (entry, then exit).
  while (pending.length > 0) {
    const next: number[] = [];
    for (const i of pending) {
      try {
        const r = (calls[i] as SideCall).t.syscallStep();
        if (r === undefined) next.push(i);
        else out[i] = { ok: true, value: r };
      } catch (e) {
        out[i] = { ok: false, error: e };
      }
    }
    pending = next;
  }
  return out;
}
