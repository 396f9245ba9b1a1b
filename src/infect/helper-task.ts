/**
 * Throwaway tasks of our own: a `sleep`, started and (for most uses) seized
 * right after its exec, never a target. For what criu-ts cannot do itself
 * (Node is multithreaded, and setns into a mount or user namespace needs a
 * task whose fs and memory are its own) and must not do in a target
 * (unshare a mount namespace, unmount in it, single-step a cpuid), for the
 * restore's stub (restore/stub.ts) and for `check`'s ptrace probes. It is
 * killed afterwards, with every namespace it entered or made: nothing it
 * did outlives it but the fds taken from it (pidfd_getfd).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { CriuTsError, type ErrorCode } from '../errors.js';
import { sleepMs } from '../sys/index.js';
import { releaseQuiet } from './ptrace-state.js';
import { Tracee } from './tracee.js';

/** A `sleep` of ours, running the program (not node's copy of itself before the exec). */
export interface OwnSleep {
  proc: ChildProcess;
  pid: number;
}

/**
 * Start `sleep seconds` and wait until it has exec'd. Failures are thrown
 * as `code` with `what` leading the message; the child is killed on any.
 */
export function startOwnSleep(what: string, code: ErrorCode, seconds: number): OwnSleep {
  const prog = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p));
  if (prog === undefined) throw new CriuTsError(code, `${what}: no /usr/bin/sleep to run`, {});
  const proc = spawn(prog, [String(seconds)], { stdio: 'ignore' });
  proc.on('error', () => { /* reported below as "did not start" */ });
  const pid = proc.pid;
  if (pid === undefined) throw new CriuTsError(code, `${what}: cannot start ${prog}`, {});
  // spawn() returns before exec: wait until the child runs the program, not a copy of node.
  const deadline = Date.now() + 5000;
  for (;;) {
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // not there yet
    }
    if (exe === prog || exe.endsWith('/sleep')) return { proc, pid };
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new CriuTsError(code, `${what}: ${prog} did not start`, { pid });
    }
    sleepMs(0.2);
  }
}

/** Run `fn` with a helper task seized and stopped; the helper is killed after, whatever happens. */
export function withHelperTask<T>(what: string, fn: (t: Tracee) => T): T {
  return withSeized(startOwnSleep(what, 'EINTERNAL', 1000), fn);
}

/** Run `fn` with `own` seized and stopped; it is killed after, whatever happens. */
export function withSeized<T>(own: OwnSleep, fn: (t: Tracee) => T): T {
  try {
    const t = Tracee.seize(own.pid);
    try {
      return fn(t);
    } finally {
      releaseQuiet(own.pid);
    }
  } finally {
    own.proc.kill('SIGKILL');
  }
}
