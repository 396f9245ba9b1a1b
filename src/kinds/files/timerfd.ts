/**
 * timerfd: CRIU's TIMERFD file_entry (timerfd_entry: clockid, ticks,
 * settime_flags, remaining value vsec/vnsec, interval isec/insec).
 *
 * Dump takes fdinfo's it_value, the time left until the next expiry, so a
 * restored timer resumes where it stopped (the time spent dumped does not
 * count, as with CRIU). The timer is armed in the `finish` hook, after
 * every fd of the task exists, so it cannot fire while the task is still
 * being built; an absolute timer (TFD_TIMER_ABSTIME) is re-armed at the
 * task's clock now + the time left. Expirations not yet read at dump
 * (ticks) are put back with TFD_IOC_SET_TICKS after arming (arming clears
 * them), so a read() after restore returns them, as CRIU does.
 *
 * Known limits: a TFD_TIMER_CANCEL_ON_SET timer is re-armed but a clock
 * change that happened while dumped is not reported as ECANCELED.
 */
import { NR, TFD_TIMER_ABSTIME, TFD_IOC_SET_TICKS } from '../../sys/index.js';
import type { FileEntry, TimerfdEntry } from '../../images/messages.js';
import type { FileKind, FdProbe, RestoreTaskHandle } from '../types.js';
import { CriuTsError } from '../../errors.js';
import { NO_FOWN } from './fown.js';
import { createFlags, fileFlags, isAnonLink, part } from './anon-inode.js';

const NSEC_PER_SEC = 1_000_000_000n;

export const timerfdKind: FileKind = {
  name: 'timerfd',
  type: 'TIMERFD',
  detect: (p: FdProbe) => isAnonLink(p, 'timerfd'),
  dump(p: FdProbe, id: number): FileEntry {
    const info = p.fdinfo.timerfd;
    if (!info) throw new CriuTsError('EDUMP', `task ${p.pid} fd ${p.fd}: timerfd without clockid in fdinfo`, { pid: p.pid, fd: p.fd });
    const tfd: TimerfdEntry = {
      id,
      flags: fileFlags(p),
      fown: NO_FOWN,
      clockid: info.clockid,
      ticks: info.ticks,
      settime_flags: info.settimeFlags,
      vsec: info.itValue.sec,
      vnsec: info.itValue.nsec,
      isec: info.itInterval.sec,
      insec: info.itInterval.nsec,
    };
    return { type: 'TIMERFD', id, tfd };
  },
  restore(t: RestoreTaskHandle, e: FileEntry): number {
    const tfd = part(e, 'tfd', 'TIMERFD');
    return Number(t.syscall(`timerfd_create(clock ${tfd.clockid})`, NR.timerfd_create, tfd.clockid, createFlags(tfd.flags)));
  },
  finish(t: RestoreTaskHandle, e: FileEntry, fd: number): void {
    const tfd = part(e, 'tfd', 'TIMERFD');
    let value = tfd.vsec * NSEC_PER_SEC + tfd.vnsec;
    const interval = tfd.isec * NSEC_PER_SEC + tfd.insec;
    // A periodic timer that expired and was not read yet shows 0 left (the
    // kernel moves it on only at read): it is still armed; next tick one
    // interval from now.
    if (value === 0n && interval !== 0n && tfd.ticks !== 0n) value = interval;
    const armed = value !== 0n;
    if (armed && tfd.settime_flags & TFD_TIMER_ABSTIME) value += clockNow(t, tfd.clockid);
    const its = Buffer.alloc(32);
    its.writeBigInt64LE(tfd.isec, 0);
    its.writeBigInt64LE(tfd.insec, 8);
    // A zero it_value disarms: keep it zero rather than "now" for an absolute timer.
    its.writeBigInt64LE(armed ? value / NSEC_PER_SEC : 0n, 16);
    its.writeBigInt64LE(armed ? value % NSEC_PER_SEC : 0n, 24);
    t.syscall('timerfd_settime', NR.timerfd_settime, fd, tfd.settime_flags, t.putBytes(its), 0);
    if (tfd.ticks !== 0n) {
      const ticks = Buffer.alloc(8);
      ticks.writeBigUInt64LE(tfd.ticks);
      t.syscall('ioctl(TFD_IOC_SET_TICKS)', NR.ioctl, fd, TFD_IOC_SET_TICKS, t.putBytes(ticks));
    }
  },
};

/** The task's view of a clock in nanoseconds (its time namespace applies). */
function clockNow(t: RestoreTaskHandle, clockid: number): bigint {
  const at = t.putBytes(Buffer.alloc(16));
  t.syscall('clock_gettime', NR.clock_gettime, clockid, at);
  const ts = t.tracee.readMem(at, 16);
  return ts.readBigInt64LE(0) * NSEC_PER_SEC + ts.readBigInt64LE(8);
}
