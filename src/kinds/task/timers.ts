/**
 * Interval timers and POSIX timers (task_core_entry timers): ITIMER_REAL,
 * VIRTUAL and PROF read with getitimer, POSIX timers listed by /proc/PID/timers
 * and read with timer_gettime / timer_getoverrun, all injected in the task.
 *
 * POSIX timers keep their ids. Timer ids are handed out in increasing order
 * from 0 in a new process, so we create timers in id order and delete the
 * fillers for ids the task did not have (a gap means the task deleted one).
 * They are made once every thread exists (a timer may signal one thread).
 *
 * Limits: ids above MAX_TIMER_GAP are refused at restore; the overrun
 * count is saved but a new timer starts with none.
 */
import { NR, SIGEV_NONE, SIGEV_THREAD_ID } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import { parseTimers } from '../../proc/index.js';
import type { Tracee } from '../../infect/tracee.js';
import type { TaskCoreEntry, TaskTimersEntry, ItimerEntry, PosixTimerEntry } from '../../images/messages.js';
import type { RestoreTaskHandle } from '../types.js';
import { call, type StepCall } from '../steps.js';
import type { TaskStateKind } from './types.js';

const MAX_TIMER_GAP = 4096;

function* itimer(t: Tracee, which: number): Generator<StepCall, ItimerEntry, bigint> {
  const s = t.mapScratch();
  yield* call('getitimer', NR.getitimer, which, s);
  const b = t.readMem(s, 32);
  return { isec: b.readBigInt64LE(0), iusec: b.readBigInt64LE(8), vsec: b.readBigInt64LE(16), vusec: b.readBigInt64LE(24) };
}

const SIGEV_NAME_TO_NUM: Readonly<Record<string, number>> = { signal: 0, none: 1, thread: 2 };

function* dumpTimers(t: Tracee, pid: number): Generator<StepCall, Partial<TaskCoreEntry>, bigint> {
  const timers: TaskTimersEntry = { real: yield* itimer(t, 0), virt: yield* itimer(t, 1), prof: yield* itimer(t, 2) };
  const posix: PosixTimerEntry[] = [];
  const s = t.mapScratch();
  for (const pt of parseTimers(pid)) {
    yield* call('timer_gettime', NR.timer_gettime, pt.id, s);
    const b = t.readMem(s, 32);
    const overrun = Number(yield* call('timer_getoverrun', NR.timer_getoverrun, pt.id));
    const notify = (SIGEV_NAME_TO_NUM[pt.notifyHow] ?? 0) | (pt.notifyThreadId ? SIGEV_THREAD_ID : 0);
    const e: PosixTimerEntry = {
      it_id: pt.id,
      clock_id: pt.clockId,
      si_signo: pt.signal,
      it_sigev_notify: notify,
      sival_ptr: pt.sigevValue,
      overrun,
      isec: b.readBigInt64LE(0),
      insec: b.readBigInt64LE(8),
      vsec: b.readBigInt64LE(16),
      vnsec: b.readBigInt64LE(24),
    };
    if (pt.notifyThreadId) e.notify_thread_id = pt.notifyTid;
    posix.push(e);
  }
  if (posix.length > 0) timers.posix = posix;
  return { timers };
}

function itimerBuf(e: ItimerEntry): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigInt64LE(e.isec, 0);
  b.writeBigInt64LE(e.iusec, 8);
  b.writeBigInt64LE(e.vsec, 16);
  b.writeBigInt64LE(e.vusec, 24);
  return b;
}

function restoreItimers(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  const timers = tc.timers;
  if (!timers) return;
  const list: [number, ItimerEntry][] = [[0, timers.real], [1, timers.virt], [2, timers.prof]];
  for (const [which, dumped] of list) {
    let e = dumped;
    if (e.vsec === 0n && e.vusec === 0n) {
      if (e.isec === 0n && e.iusec === 0n) continue;
      // A periodic ITIMER_REAL whose SIGALRM is pending (blocked, or the
      // task held by us) is re-armed only when the signal is dequeued, so
      // it reads as value 0 with its interval: setitimer with value 0
      // would disarm it. It is armed to fire at once instead, which gives
      // the same pending SIGALRM and then runs on with its interval.
      e = { ...e, vusec: 1n };
    }
    t.syscall('setitimer', NR.setitimer, which, t.putBytes(itimerBuf(e)), 0);
  }
}


function sigevent(p: PosixTimerEntry): Buffer {
  const b = Buffer.alloc(64);
  b.writeBigUInt64LE(p.sival_ptr, 0);
  b.writeInt32LE(p.si_signo, 8);
  b.writeInt32LE(p.it_sigev_notify, 12);
  if (p.it_sigev_notify & SIGEV_THREAD_ID) b.writeInt32LE(p.notify_thread_id ?? 0, 16);
  return b;
}

function restorePosixTimers(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
  const timers = [...(tc.timers?.posix ?? [])].sort((a, b) => a.it_id - b.it_id);
  if (timers.length === 0) return;
  const last = timers[timers.length - 1] as PosixTimerEntry;
  if (last.it_id > MAX_TIMER_GAP) throw new CriuTsError('EUNSUPPORTED', `task ${t.pid}: POSIX timer id ${last.it_id} is too high to recreate`, { pid: t.pid });
  const fillers: number[] = [];
  const idBuf = t.putBytes(Buffer.alloc(8));
  const filler: PosixTimerEntry = { ...last, it_sigev_notify: SIGEV_NONE, si_signo: 0 };
  for (let want = 0, i = 0; i < timers.length; want++) {
    const p = timers[i] as PosixTimerEntry;
    const ev = t.putBytes(sigevent(p.it_id === want ? p : filler));
    t.syscall('timer_create', NR.timer_create, p.it_id === want ? p.clock_id : 1, ev, idBuf);
    const got = t.tracee.readMem(idBuf, 4).readInt32LE(0);
    if (got !== want) throw new CriuTsError('ERESTORE', `task ${t.pid}: POSIX timer got id ${got}, wanted ${want}`, { pid: t.pid });
    if (p.it_id !== want) {
      fillers.push(got);
      continue;
    }
    i++;
    if (p.vsec !== 0n || p.vnsec !== 0n) {
      const its = Buffer.alloc(32);
      its.writeBigInt64LE(p.isec, 0);
      its.writeBigInt64LE(p.insec, 8);
      its.writeBigInt64LE(p.vsec, 16);
      its.writeBigInt64LE(p.vnsec, 24);
      t.syscall('timer_settime', NR.timer_settime, got, 0, t.putBytes(its), 0);
    }
  }
  for (const id of fillers) t.syscall('timer_delete', NR.timer_delete, id);
}

export const timersKind: TaskStateKind = {
  name: 'timers',
  dump: dumpTimers,
  restore: { 'before-threads': restoreItimers, 'after-threads': restorePosixTimers },
};
