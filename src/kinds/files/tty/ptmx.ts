/**
 * Opening pty masters at a wanted index: the ptmx of the task's devpts
 * (a container's own devpts instance has no path in criu-ts's view) is
 * opened in the task until the kernel hands out that index. Masters of our
 * own (a hung-up slave's, orphan_pts_master's, one whose slave is
 * bind-mounted and must exist before the mounts are built) are opened
 * there too and taken over with pidfd_getfd.
 */
import { closeSync } from 'node:fs';
import { NR, ioctlTry, O_ACCMODE, O_CLOEXEC, O_NOCTTY, O_PATH, AT_FDCWD, fdOfTask } from '../../../sys/index.js';
import type { RestoreContext, RestoreTaskHandle } from '../../types.js';
import { CriuTsError } from '../../../errors.js';
import { IOC, intArg } from './termios.js';
import { restored } from './shared.js';

/** How many masters we may open to reach a pty index. */
const MAX_PTY_TRIES = 4096;

/**
 * Open the ptmx at `path` in the task (the one it opened: /dev/ptmx, or
 * its devpts's own pts/ptmx) until the kernel hands out index `want` (the
 * extra masters closed); its fd there.
 */
export function openPtmxAt(t: RestoreTaskHandle, want: number, flags: number, path = '/dev/ptmx', dirfd = AT_FDCWD): number {
  const extra: number[] = [];
  try {
    for (let i = 0; i < MAX_PTY_TRIES; i++) {
      const m = Number(t.syscall(`open ${path}`, NR.openat, dirfd, t.putString(path), (flags & ~(O_ACCMODE | O_CLOEXEC)) | 2 | O_NOCTTY, 0));
      const at = intArg(t, -1);
      t.syscall('ioctl(TIOCGPTN)', NR.ioctl, m, IOC.TIOCGPTN, at);
      const got = t.tracee.readMem(at, 4).readInt32LE(0);
      if (got === want) return m;
      if (got > want) {
        t.syscall('close', NR.close, m);
        throw new CriuTsError('ERESTORE', `pty ${want} is in use on this system (got ${got}): cannot re-create the pair`, { index: want });
      }
      extra.push(m);
    }
  } finally {
    for (const x of extra) t.syscall('close', NR.close, x);
  }
  throw new CriuTsError('ERESTORE', `could not reach pty index ${want}`, { index: want });
}

/**
 * A master of our own at index `want`, unlocked: /dev/ptmx is opened in
 * the task (its devpts: a container's has no path here) until it hands out
 * `want`, and we keep a copy of that master (pidfd_getfd); the task keeps
 * none of them.
 */
export function ptmxAt(t: RestoreTaskHandle, want: number): number {
  const m = openPtmxAt(t, want, 2);
  try {
    const ours = fdOfTask(t.pid, m);
    ioctlTry(ours, IOC.TIOCSPTLCK, Buffer.alloc(4));
    return ours;
  } finally {
    t.syscall('close', NR.close, m);
  }
}

/**
 * A slave bind-mounted elsewhere (zdtm's pty-console: /dev/pts/0 on
 * /dev/console) must exist before the mounts are built, long before its
 * master is restored: while the mount kind builds the tree in task `t`, the
 * pty of index `index` is made from the ptmx of the devpts mount `devpts`
 * (an fd in `t`), if it is not there, and kept (locked, as a new pty is)
 * for the task that restores its master (createMaster), as CRIU does.
 */
export function ptyForBindMount(t: RestoreTaskHandle, devpts: number, index: number, ctx: RestoreContext): void {
  const st = restored(ctx);
  if (st.premade.has(index)) return;
  try {
    t.syscall('close', NR.close, t.syscall(`openat(pts ${index})`, NR.openat, devpts, t.putString(String(index)), O_PATH | O_CLOEXEC, 0));
    return; // there already
  } catch {
    // not there: made below
  }
  const m = openPtmxAt(t, index, 2, 'ptmx', devpts);
  try {
    if (st.premade.size === 0) {
      ctx.afterAllFiles(() => {
        for (const fd of st.premade.values()) closeSync(fd);
        st.premade.clear();
      }, { alsoOnFailure: true });
    }
    st.premade.set(index, fdOfTask(t.pid, m));
  } finally {
    t.syscall('close', NR.close, m);
  }
}
