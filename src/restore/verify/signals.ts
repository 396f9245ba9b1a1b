/**
 * Pending signals and timers, compared on their own terms: timers keep
 * counting while the tree is held, and may queue signals of their own.
 */
import type { CoreEntry } from '../../images/messages.js';
import type { TaskImages } from '../images.js';
import { Collector, diffValue } from './diff.js';
import { SI_TIMER, SI_KERNEL, SIGALRM, SIGVTALRM, SIGPROF } from '../../sys/index.js';


/**
 * The signals the dumped itimers may raise while the tree is held (they
 * keep counting). A periodic timer dumped at value 0 had expired with its
 * signal not yet taken (the kernel re-arms it only then; a signal that
 * came after its queue was read is not in the images): the restore arms
 * it to fire at once (kinds/task/timers.ts), so its signal may be pending.
 */
export function itimerSignals(tc: NonNullable<CoreEntry['tc']>): Set<number> {
  const out = new Set<number>();
  const armed = (e: { vsec: bigint; vusec: bigint; isec: bigint; iusec: bigint } | undefined): boolean =>
    e !== undefined && (e.vsec !== 0n || e.vusec !== 0n || e.isec !== 0n || e.iusec !== 0n);
  if (armed(tc.timers?.real)) out.add(SIGALRM);
  if (armed(tc.timers?.virt)) out.add(SIGVTALRM);
  if (armed(tc.timers?.prof)) out.add(SIGPROF);
  return out;
}

/**
 * Pending signals: every dumped one is queued again, in order among
 * themselves. A timer restored before them (timers go in with the task,
 * pending signals at the very end) that expired while the tree was held
 * may have queued signals of its own before or between them: only such
 * ones (SI_TIMER) are allowed besides the dumped ones.
 */
export function verifySignals(
  dumped: readonly { siginfo: Buffer }[], now: readonly { siginfo: Buffer }[], field: string, c: Collector, tid?: number,
  timerSignals: ReadonlySet<number> = new Set(),
): void {
  // A timer's own signal: a POSIX timer's (SI_TIMER), or an armed itimer's (SIGALRM/SIGVTALRM/SIGPROF from the kernel).
  const fromTimer = (si: Buffer): boolean => si.readInt32LE(8) === SI_TIMER || (si.readInt32LE(8) === SI_KERNEL && timerSignals.has(si.readInt32LE(0)));
  let j = 0;
  for (const [i, d] of dumped.entries()) {
    while (j < now.length && !(now[j] as { siginfo: Buffer }).siginfo.equals(d.siginfo)) {
      const extra = (now[j] as { siginfo: Buffer }).siginfo;
      if (!fromTimer(extra)) {
        c.add(`${field}[${i}]`, `signal ${d.siginfo.readInt32LE(0)}`, `signal ${extra.readInt32LE(0)} code ${extra.readInt32LE(8)}`, tid);
        return;
      }
      j++;
    }
    if (j >= now.length) {
      c.add(`${field}[${i}]`, `signal ${d.siginfo.readInt32LE(0)}`, 'not pending', tid);
      return;
    }
    j++;
  }
  for (const r of now.slice(j)) {
    if (!fromTimer(r.siginfo)) c.add(`${field} (extra)`, 'none', `signal ${r.siginfo.readInt32LE(0)} code ${r.siginfo.readInt32LE(8)}`, tid);
  }
}

/**
 * A timer kept counting while the tree was held: its value is at most the
 * dumped one, or, if it expired meanwhile, reloaded from its interval (a
 * one-shot one may have run out: its signal is then pending). A disarmed
 * timer stays disarmed.
 */
function countdownOk(dsec: bigint, dfrac: bigint, isec: bigint, ifrac: bigint, rsec: bigint, rfrac: bigint, unit: bigint): boolean {
  const d = dsec * unit + dfrac;
  const i = isec * unit + ifrac;
  const r = rsec * unit + rfrac;
  if (d === 0n) return r === 0n;
  // The kernel may round a value it is given up to its clock's tick (CPU-time itimers count in ticks): 10 ms of slack.
  const slack = unit / 100n;
  return r <= (d > i ? d : i) + slack && (r > 0n || i === 0n);
}

/** A SIGALRM from the kernel (an ITIMER_REAL's) is queued for the task now. */
function pendingAlarm(tc: NonNullable<CoreEntry['tc']>): boolean {
  return (tc.signals_s?.signals ?? []).some((q) => q.siginfo.readInt32LE(0) === SIGALRM && q.siginfo.readInt32LE(8) === SI_KERNEL);
}

/**
 * `alarmPendingNow`: whether a SIGALRM is pending for the task, asked after
 * `tc` was read. `tc`'s pending signals were read before its timers, so an
 * ITIMER_REAL that expired between the two reads (a dumped value of a few
 * ms) reads 0 with its SIGALRM missing from `tc`.
 */
export function verifyTimers(task: TaskImages, tc: NonNullable<CoreEntry['tc']>, c: Collector, alarmPendingNow?: () => boolean): void {
  const dumped = task.cores[0]?.tc?.timers;
  const now = tc.timers;
  if (!dumped || !now) return;
  for (const which of ['real', 'virt', 'prof'] as const) {
    const a = dumped[which];
    const b = now[which];
    if (!a || !b) continue;
    if (a.isec !== b.isec || a.iusec !== b.iusec) c.add(`timers.${which}.interval`, `${a.isec}s ${a.iusec}us`, `${b.isec}s ${b.iusec}us`);
    // An ITIMER_REAL that expired while the tree was held reads 0 until its
    // SIGALRM is taken (the kernel re-arms it from the interval then).
    const expiredPending = which === 'real' && b.vsec === 0n && b.vusec === 0n && (pendingAlarm(tc) || alarmPendingNow?.() === true);
    if (!expiredPending && !countdownOk(a.vsec, a.vusec, a.isec, a.iusec, b.vsec, b.vusec, 1_000_000n)) c.add(`timers.${which}.value`, `${a.vsec}s ${a.vusec}us`, `${b.vsec}s ${b.vusec}us`);
  }
  const dp = dumped.posix ?? [];
  const rp = now.posix ?? [];
  if (dp.length !== rp.length) {
    c.add('timers.posix.length', dp.length, rp.length);
    return;
  }
  for (const a of dp) {
    const b = rp.find((x) => x.it_id === a.it_id);
    if (!b) {
      c.add(`timers.posix[${a.it_id}]`, 'present', 'missing');
      continue;
    }
    diffValue(a, b, '', new Set(['overrun', 'vsec', 'vnsec']), (f, x, y) => c.add(`timers.posix[${a.it_id}].${f}`, x, y));
    if (!countdownOk(a.vsec, a.vnsec, a.isec, a.insec, b.vsec, b.vnsec, 1_000_000_000n)) c.add(`timers.posix[${a.it_id}].value`, `${a.vsec}s ${a.vnsec}ns`, `${b.vsec}s ${b.vnsec}ns`);
  }
}

