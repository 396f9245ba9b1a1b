/**
 * POSIX timers with their ids. Timer ids are handed out in increasing order
 * from 0 in a new process, so we create timers in id order and delete the
 * fillers for ids the task did not have (a gap means the task deleted one).
 */
import { NR } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import type { TaskCoreEntry, PosixTimerEntry } from '../images/messages.js';
import type { RestoreTaskHandle } from '../kinds/index.js';

const SIGEV_NONE = 1;
const SIGEV_THREAD_ID = 4;
const MAX_TIMER_GAP = 4096;

function sigevent(p: PosixTimerEntry): Buffer {
  const b = Buffer.alloc(64);
  b.writeBigUInt64LE(p.sival_ptr, 0);
  b.writeInt32LE(p.si_signo, 8);
  b.writeInt32LE(p.it_sigev_notify, 12);
  if (p.it_sigev_notify & SIGEV_THREAD_ID) b.writeInt32LE(p.notify_thread_id ?? 0, 16);
  return b;
}

export function restorePosixTimers(t: RestoreTaskHandle, tc: TaskCoreEntry): void {
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
