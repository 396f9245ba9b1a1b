/**
 * Waiting on a traced task outside an injected syscall: the stop that
 * follows PTRACE_INTERRUPT, and the death of a task we killed.
 */
import {
  ptraceCont, ptraceGetSiginfo, waitPid, sleepMs, __WALL, WNOHANG, PTRACE_EVENT, SIGINFO_SIZE, SIGTRAP,
} from '../sys/index.js';
import { CriuTsError } from '../errors.js';

/**
 * Wait for the PTRACE_EVENT_STOP that follows PTRACE_INTERRUPT. A pending
 * signal may be reported first (signal-delivery-stop): its siginfo is kept
 * and the signal suppressed, to be re-queued on cure or dumped as pending.
 */
export function waitForStop(tid: number, timeoutMs: number): { stopSignal: number; stashed: Buffer[] } {
  const stashed: Buffer[] = [];
  const deadline = Date.now() + timeoutMs;
  let delay = 0.02;
  for (;;) {
    const st = waitPid(tid, __WALL | WNOHANG);
    if (st === null) {
      if (Date.now() > deadline) throw new CriuTsError('ETIMEOUT', `task ${tid} did not stop within ${timeoutMs} ms`, { pid: tid });
      // Most stops come within a time slice or two of the interrupt: a sleep
      // that doubled past a millisecond would overshoot one by as much (the
      // restore's stub waited 10 ms so at load 7); a poll is a cheap call.
      sleepMs(delay);
      delay = Math.min(delay * 2, 1);
      continue;
    }
    if (st.exited || st.signaled) throw new CriuTsError('ENOTASK', `task ${tid} exited while being stopped`, { pid: tid });
    if (st.event === PTRACE_EVENT.STOP) {
      // Group-stop is reported as EVENT_STOP with a stop signal (SIGSTOP/SIGTSTP/...); a plain interrupt with SIGTRAP.
      const sig = st.stopSig;
      return { stopSignal: sig === SIGTRAP ? 0 : sig, stashed };
    }
    if (st.event === 0 && st.stopSig !== 0) {
      const si = ptraceGetSiginfo(tid);
      if (si.length === SIGINFO_SIZE) stashed.push(si);
      ptraceCont(tid, 0);
      continue;
    }
    ptraceCont(tid, 0);
  }
}

/**
 * As tracer, collect a traced task's death (after SIGKILL or exit), so that
 * its real parent can see it. For a thread group, collect every other
 * thread first: the kernel reports the leader's death only after theirs.
 */
export function collectExit(tid: number): void {
  for (;;) {
    try {
      const st = waitPid(tid, __WALL);
      if (st === null || st.exited || st.signaled) return;
    } catch {
      return; // ECHILD: already collected, or not ours
    }
  }
}
