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
import { existsSync, readlinkSync } from 'node:fs';
import { CriuTsError, type ErrorCode } from '../errors.js';
import { killAndReap, sleepMs, spawnProgram } from '../sys/index.js';
import { releaseQuiet } from './ptrace-state.js';
import { Tracee } from './tracee.js';

/** A `sleep` of ours, running the program (its exec over). */
export interface OwnSleep {
  pid: number;
  /** SIGKILL it and collect it later (let it go first if it is traced) */
  kill(): void;
}

/**
 * Start `sleep seconds` (sys/spawn.ts: no copy of Node's memory), past
 * the point of its exec where it is the program. Failures are thrown as `code` with `what` leading
 * the message; the child is killed on any.
 */
export function startOwnSleep(what: string, code: ErrorCode, seconds: number): OwnSleep {
  const prog = sleepProgram(what, code);
  let pid: number;
  try {
    pid = spawnProgram(prog, ['sleep', String(seconds)]);
  } catch (e) {
    throw new CriuTsError(code, `${what}: cannot start ${prog}: ${(e as Error).message}`, {}, e);
  }
  const own: OwnSleep = { pid, kill: () => killAndReap(pid) };
  // posix_spawn returns as the exec lets go of our memory, a moment before
  // the child's new memory (and with it /proc/PID/exe) is in place; the rest
  // of the exec runs before the task's first return to user space, which is
  // where a seize stops it.
  const deadline = Date.now() + 5000;
  for (;;) {
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // not there yet
    }
    if (exe === prog || exe.endsWith('/sleep')) return own;
    if (Date.now() > deadline) {
      own.kill();
      throw new CriuTsError(code, `${what}: ${prog} did not start`, { pid });
    }
    sleepMs(0.2);
  }
}

/** The `sleep` program our helpers run. */
export function sleepProgram(what: string, code: ErrorCode): string {
  const prog = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p));
  if (prog === undefined) throw new CriuTsError(code, `${what}: no /usr/bin/sleep to run`, {});
  return prog;
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
    own.kill();
  }
}
