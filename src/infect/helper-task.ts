/**
 * Throwaway tasks of our own: a `sleep`, started and (for most uses) seized
 * right after its exec, never a target. For what criu-ts cannot do itself
 * (Node is multithreaded, and setns into a mount or user namespace needs a
 * task whose fs and memory are its own) and must not do in a target
 * (unshare a mount namespace, unmount in it, single-step a cpuid), for the
 * restore's stub (restore/stub.ts) and for `check`'s ptrace probes. It is
 * killed afterwards, with every namespace it entered or made: nothing it
 * did outlives it but the fds taken from it (pidfd_getfd). The restore's
 * stub is spawned ahead, on another thread, as a `cat` tethered to us
 * (spawnTethered).
 */
import { closeSync, existsSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { CriuTsError, type ErrorCode } from '../errors.js';
import { killAndReap, pipe2, sleepMs, spawnProgram, spawnProgramAsync, O_CLOEXEC } from '../sys/index.js';
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
  return execDone({ pid, kill: () => killAndReap(pid) }, prog, what, code);
}

/**
 * A helper spawned on another thread (sys/spawn.ts spawnProgramAsync)
 * while we go on, which must not outlive us even before it is seized
 * (then PTRACE_O_EXITKILL ties it to us): `cat` reading a pipe whose only
 * writer is ours (close-on-exec, so no child of ours holds it), so that
 * it reads EOF and exits the moment we die, whenever that is. A `sleep`
 * would sleep on, and its pid is known only to our own thread, once the
 * spawn's result is taken: too late to tell the guardian of a run killed
 * before. Resolves once it is spawned, not yet past its exec (execDone).
 */
export async function spawnTethered(what: string, code: ErrorCode): Promise<OwnSleep & { prog: string }> {
  const prog = ['/usr/bin/cat', '/bin/cat'].find((p) => existsSync(p));
  if (prog === undefined) throw new CriuTsError(code, `${what}: no /usr/bin/cat to run`, {});
  const [r, w] = pipe2(O_CLOEXEC);
  let pid: number;
  try {
    // No environment of ours but glibc told not to register rseq: a task
    // cloned from it then has none to unregister before its memory goes
    // (kinds/memory/restore.ts: 1 injected call, where it was seized late enough to have one).
    pid = await spawnProgramAsync(prog, ['cat'], { stdin: r, env: { GLIBC_TUNABLES: 'glibc.pthread.rseq=0' } });
  } catch (e) {
    closeSync(w);
    throw new CriuTsError(code, `${what}: cannot start ${prog}: ${(e as Error).message}`, {}, e);
  } finally {
    closeSync(r);
  }
  return {
    pid,
    prog,
    kill: () => {
      killAndReap(pid);
      closeSync(w);
    },
  };
}

/** `own` once it runs `prog` (its exec over; a link to it counts); killed, and `what` thrown as `code`, if it does not come to. */
export function execDone(own: OwnSleep, prog: string, what: string, code: ErrorCode): OwnSleep {
  const pid = own.pid;
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
    if (exe === prog || (exe !== '' && basename(exe) === basename(prog))) return own;
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
