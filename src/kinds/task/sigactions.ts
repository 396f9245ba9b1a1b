/**
 * Signal actions (task_core_entry sigactions): the handler, flags,
 * restorer and mask of every signal, read and set with rt_sigaction
 * injected in the task. Only signals the task catches or ignores (SigCgt /
 * SigIgn of /proc) and SIGCHLD (whose flags matter even at SIG_DFL) are
 * asked; every other one is SIG_DFL with nothing set.
 *
 * Limits: compat (32-bit) actions are not dumped (x86_64 tasks only).
 */
import { NR, SIGKILL, SIGSTOP, SIGCHLD, SIG_MAX } from '../../sys/index.js';
import type { ProcStatus } from '../../proc/index.js';
import type { Tracee } from '../../infect/tracee.js';
import type { SaEntry, TaskCoreEntry } from '../../images/messages.js';
import type { RestoreTaskHandle } from '../types.js';
import { call, type StepCall } from '../steps.js';
import type { TaskStateKind } from './types.js';

/** Bytes of one kernel struct sigaction (handler, flags, restorer, mask). */
const SA_BYTES = 32;

function* dumpSigactions(t: Tracee, _pid: number, st: ProcStatus): Generator<StepCall, Partial<TaskCoreEntry>, bigint> {
  const interesting = st.sigCgt | st.sigIgn | (1n << BigInt(SIGCHLD - 1));
  // Every answer goes to its own slot in scratch; one read collects them all.
  const s = t.mapScratch();
  const slot = (sig: number): number => sig * SA_BYTES;
  const asked = (sig: number): boolean => ((interesting >> BigInt(sig - 1)) & 1n) === 1n;
  for (let sig = 1; sig <= SIG_MAX; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP || !asked(sig)) continue;
    yield* call('rt_sigaction', NR.rt_sigaction, sig, 0, s + BigInt(slot(sig)), 8);
  }
  const all = t.readMem(s, slot(SIG_MAX + 1));
  const out: SaEntry[] = [];
  for (let sig = 1; sig <= SIG_MAX; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    if (!asked(sig)) {
      out.push({ sigaction: 0n, flags: 0n, restorer: 0n, mask: 0n, compat_sigaction: false });
      continue;
    }
    const o = slot(sig);
    out.push({
      sigaction: all.readBigUInt64LE(o),
      flags: all.readBigUInt64LE(o + 8),
      restorer: all.readBigUInt64LE(o + 16),
      mask: all.readBigUInt64LE(o + 24),
      compat_sigaction: false,
    });
  }
  return { sigactions: out };
}

function restoreSigactions(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  const acts = tc.sigactions ?? [];
  let i = 0;
  for (let sig = 1; sig <= SIG_MAX && i < acts.length; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    const a = acts[i++];
    if (!a) continue;
    if (a.sigaction === 0n && a.flags === 0n && a.mask === 0n) continue; // SIG_DFL with nothing set: already so
    const b = Buffer.alloc(SA_BYTES);
    b.writeBigUInt64LE(a.sigaction, 0);
    b.writeBigUInt64LE(a.flags, 8);
    b.writeBigUInt64LE(a.restorer, 16);
    b.writeBigUInt64LE(a.mask, 24);
    t.syscall(`rt_sigaction(${sig})`, NR.rt_sigaction, sig, t.putBytes(b), 0, 8);
  }
}

export const sigactionsKind: TaskStateKind = {
  name: 'sigactions',
  dump: dumpSigactions,
  restore: { 'before-threads': restoreSigactions },
};
