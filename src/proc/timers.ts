/** /proc/PID/timers: the POSIX timers a process owns (values need the task itself). */
import { lines, parseError, readProcText } from './read.js';

export interface PosixTimerInfo {
  id: number;
  signal: number;
  /** sigev_value as printed (a pointer-sized integer). */
  sigevValue: bigint;
  /** "signal", "none" or "thread" (SIGEV_*) */
  notifyHow: string;
  /** true when SIGEV_THREAD_ID: the notify target is a thread id */
  notifyThreadId: boolean;
  notifyTid: number;
  clockId: number;
}

export function parseTimers(pid: number): PosixTimerInfo[] {
  const file = `/proc/${pid}/timers`;
  const out: PosixTimerInfo[] = [];
  let cur: PosixTimerInfo | undefined;
  for (const line of lines(readProcText(pid, file))) {
    const colon = line.indexOf(':');
    const key = line.slice(0, colon);
    const val = line.slice(colon + 1).trim();
    if (key === 'ID') {
      cur = { id: Number(val), signal: 0, sigevValue: 0n, notifyHow: 'signal', notifyThreadId: false, notifyTid: 0, clockId: 0 };
      out.push(cur);
      continue;
    }
    if (cur === undefined) throw parseError(file, line, 'field before ID');
    if (key === 'signal') {
      const m = /^([0-9]+)\/(?:0x)?([0-9a-f]+)$/.exec(val);
      if (m === null) throw parseError(file, line, 'bad signal');
      cur.signal = Number(m[1]);
      cur.sigevValue = BigInt('0x' + (m[2] ?? '0'));
    } else if (key === 'notify') {
      const m = /^(\w+)\/(tid|pid)\.([0-9]+)$/.exec(val);
      if (m === null) throw parseError(file, line, 'bad notify');
      cur.notifyHow = m[1] ?? '';
      cur.notifyThreadId = m[2] === 'tid';
      cur.notifyTid = Number(m[3]);
    } else if (key === 'ClockID') {
      cur.clockId = Number(val);
    }
  }
  return out;
}
