/**
 * Controlling terminals. A session's controlling terminal belongs to the
 * session, not to an fd: a leader may have closed every fd of it and it
 * stays controlling (its members open /dev/tty, its hangup sends them
 * SIGHUP). CRIU's images keep it as tty_info's sid and pgrp (the
 * foreground group), which the dump reads through the master, where
 * TIOCGSID/TIOCGPGRP answer whoever asks.
 *
 * At restore the session leader takes its terminal right after setsid,
 * before it forks the members of its session, so they inherit it: it opens
 * the slave, TIOCSCTTY, and closes it again. The foreground group is set
 * once every group exists. When the master is made only later (by a
 * descendant of the leader), the leader takes the terminal then, once every
 * task's files exist; members it forked before have no terminal then.
 */
import { NR, O_RDWR, O_NOCTTY } from '../../../sys/index.js';
import type { RestoreContext, RestoreTaskHandle } from '../../types.js';
import { IOC, intArg } from './termios.js';
import { pidSeenBy } from '../fown.js';
import { fileOfInfo, infoIdOf, openPath, restored } from './shared.js';


/** `t` has just become a session leader: give it its controlling terminal if the dump says it had one. */
export function takeControllingTerminal(t: RestoreTaskHandle, ctx: RestoreContext): void {
  const st = restored(ctx);
  if (st.cttyOf.has(t.pid)) return;
  const info = ctx.kindImage('TTY_INFO').entries.find((i) =>
    i.sid === t.vpid && i.type === 'PTY' && i.pty !== undefined && fileOfInfo(ctx, infoIdOf(i.pty.index, true)) !== undefined);
  // A terminal whose master is outside the dump (--shell-job) is taken when its slave is reopened.
  if (!info?.pty) return;
  const index = info.pty.index;
  st.cttyOf.add(t.pid);
  if (st.masters.has(index)) {
    if (!adopt(t, index, info.pgrp)) ctx.afterAllFiles(() => setForeground(t, index, info.pgrp));
  } else {
    ctx.afterAllFiles(() => {
      adopt(t, index, 0);
      setForeground(t, index, info.pgrp);
    });
  }
}

/** Take pty `index` as `t`'s controlling terminal; set the foreground group if it exists yet. */
function adopt(t: RestoreTaskHandle, index: number, pgrp: number): boolean {
  const fd = openPath(t, `/dev/pts/${index}`, O_RDWR | O_NOCTTY);
  try {
    t.syscall('ioctl(TIOCSCTTY)', NR.ioctl, fd, IOC.TIOCSCTTY, 0);
    if (pgrp === 0 || pgrp === t.vpid) return true;
    const own = pidSeenBy(t, pgrp, 'its terminal\'s foreground group');
    try {
      t.syscall('ioctl(TIOCSPGRP)', NR.ioctl, fd, IOC.TIOCSPGRP, intArg(t, own));
      return true;
    } catch {
      return false; // the group is made later, by a child
    }
  } finally {
    t.syscall('close', NR.close, fd);
  }
}

function setForeground(t: RestoreTaskHandle, index: number, pgrp: number): void {
  if (pgrp === 0) return;
  const fd = openPath(t, `/dev/pts/${index}`, O_RDWR | O_NOCTTY);
  try {
    t.syscall(`ioctl(TIOCSPGRP ${pgrp})`, NR.ioctl, fd, IOC.TIOCSPGRP, intArg(t, pidSeenBy(t, pgrp, 'its terminal\'s foreground group')));
  } finally {
    t.syscall('close', NR.close, fd);
  }
}
