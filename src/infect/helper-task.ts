/**
 * A throwaway task of our own to inject syscalls into: `sleep`, seized
 * right after its exec. For what criu-ts cannot do itself (Node is
 * multithreaded, and setns into a mount or user namespace needs a task
 * whose fs and memory are its own) and must not do in a target (unshare a
 * mount namespace, unmount in it). It is killed afterwards, with every
 * namespace it entered or made: nothing it did outlives it but the fds
 * taken from it (pidfd_getfd).
 */
import { spawn } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { sleepMs } from '../sys/index.js';
import { releaseQuiet } from './ptrace-state.js';
import { Tracee } from './tracee.js';

/** Run `fn` with a helper task seized and stopped; the helper is killed after, whatever happens. */
export function withHelperTask<T>(what: string, fn: (t: Tracee) => T): T {
  const prog = ['/usr/bin/sleep', '/bin/sleep'].find((p) => existsSync(p));
  if (prog === undefined) throw new CriuTsError('EINTERNAL', `${what}: no /usr/bin/sleep to use as a helper task`, {});
  const child = spawn(prog, ['1000'], { stdio: 'ignore' });
  const pid = child.pid;
  try {
    if (pid === undefined) throw new CriuTsError('EINTERNAL', `${what}: cannot start ${prog} as a helper task`, {});
    // spawn() returns before exec: wait until the child runs the program, not a copy of node.
    const deadline = Date.now() + 5000;
    for (;;) {
      let exe = '';
      try {
        exe = readlinkSync(`/proc/${pid}/exe`);
      } catch {
        // not there yet
      }
      if (exe === prog || exe.endsWith('/sleep')) break;
      if (Date.now() > deadline) throw new CriuTsError('EINTERNAL', `${what}: the helper task did not start`, { pid });
      sleepMs(0.2);
    }
    const t = Tracee.seize(pid);
    try {
      return fn(t);
    } finally {
      releaseQuiet(pid);
    }
  } finally {
    child.kill('SIGKILL');
  }
}
