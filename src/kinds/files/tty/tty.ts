/**
 * Pseudo-terminals and /dev/tty: CRIU's TTY file_entry (tty_file_entry:
 * tty_info_id, flags, regf_id naming a REG entry with the path) and one
 * tty_info_entry per terminal in tty-info.img (type, pty index, termios,
 * locked termios, winsize, lock/packet/exclusive modes, session and
 * foreground group, the slave's owner). Info ids follow CRIU: index * 2,
 * + 1 for a master.
 *
 * A pty pair whose master is held by a task of the dump is re-created:
 * /dev/ptmx is opened in the task until it hands out the dumped index
 * (the extra masters are closed), then the slave is opened by path in the
 * task that uses it (the master is created first if it is not there yet)
 * and given its dumped owner. Bytes queued in the pair come back
 * (tty-data.ts); the controlling terminal of a session comes back in its
 * leader, fd or not (ctty.ts).
 *
 * A slave whose master is outside the dump (the terminal a job was started
 * from) needs --shell-job, as with CRIU: it is reopened by its path. A
 * slave whose master was closed (hung up: its ioctls answer EIO) is
 * re-created hung up, as CRIU does: a master of ours gives the index, the
 * slave is opened, and our master is closed once every task's files exist.
 * /dev/tty is reopened by path; when it comes before the controlling
 * terminal in fd order, that terminal is restored first.
 *
 * Nothing is opened by a path of criu-ts's own: a container's devpts has
 * none here. Masters are opened in the task (ptmx.ts), slaves of a dumped
 * pair are reached from our copy of the master (TIOCGPTPEER, tty-data.ts),
 * owners are set through the task's fd, and a master's session and
 * foreground group are written as the tree sees them.
 *
 * Known limits: consoles, virtual and serial terminals are left to REG
 * (reopened by path); a pty index taken by someone else at restore time
 * fails the restore; the slave's mode is not kept (CRIU has no field).
 */
import { chownSync, closeSync, readdirSync, readlinkSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { NR, EIO, ioctlTry, O_ACCMODE, O_CLOEXEC, O_NOCTTY, F_SETFL, fdOfTask, TTYAUX_MAJOR, PTS_MAJOR_FIRST, PTS_MAJOR_LAST, DEVPTS_SUPER_MAGIC } from '../../../sys/index.js';
import { installFd } from '../../install-fd.js';
import { pidSeenBy } from '../fown.js';
import { parseFdinfo, parseStat, processesTracedBy } from '../../../proc/index.js';
import type { FileEntry, TtyInfoEntry } from '../../../images/messages.js';
import { stateKey, type DumpContext, type FileKind, type FdProbe, type RestoreContext, type RestoreTaskHandle } from '../../types.js';
import { CriuTsError } from '../../../errors.js';
import { NO_FOWN } from '../fown.js';
import { regEntryForPath } from '../reg-file.js';
import { part, refuseQueued } from '../anon-inode.js';
import { IOC, intArg, ioctlInt, readTtyState, writeTtyState } from './termios.js';
import { taskFdinfo } from '../task-fds.js';
import { CTTY_INFO_ID, fileOfInfo, infoIdOf, openPath, restored, ttyFiles, ttyInfo } from './shared.js';
import { takeControllingTerminal } from './ctty.js';
import { hostOwner, treeGid, treeUid } from '../../ns/user.js';
import { hasQueues, noteMaster, restoreQueues } from './tty-data.js';
import { openPtmxAt, ptmxAt } from './ptmx.js';


type TtyKind = { what: 'master' | 'slave'; index: number } | { what: 'ctty' };

function majorOf(rdev: number): number {
  return ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}
function minorOf(rdev: number): number {
  return (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
}

function classify(p: FdProbe): TtyKind | undefined {
  if (!p.stat.isCharacterDevice()) return undefined;
  const major = majorOf(p.stat.rdev);
  const minor = minorOf(p.stat.rdev);
  if (major === TTYAUX_MAJOR && minor === 2) return { what: 'master', index: p.fdinfo.ttyIndex ?? ioctlInt(p.localFd, IOC.TIOCGPTN) ?? -1 };
  if (major === TTYAUX_MAJOR && minor === 0) return { what: 'ctty' };
  if (major >= PTS_MAJOR_FIRST && major <= PTS_MAJOR_LAST) return { what: 'slave', index: (major - PTS_MAJOR_FIRST) * 256 + minor };
  return undefined;
}


/**
 * The devpts instance (its st_dev) of the master open at /proc/PID/fd/FD,
 * whose link is `link`: the master's own file where it was opened in a
 * devpts (pts/ptmx), else the devpts the kernel took at open time, the one
 * at "pts" beside the ptmx node (/dev/ptmx -> /dev/pts), looked up in the
 * task's root. Undefined when it cannot be told.
 */
function devptsOfMaster(pid: string, fd: string, link: string): number | undefined {
  const path = `/proc/${pid}/fd/${fd}`;
  try {
    if (statfsSync(path).type === DEVPTS_SUPER_MAGIC) return statSync(path).dev;
    const pts = `/proc/${pid}/root${dirname(link)}/pts`;
    return statfsSync(pts).type === DEVPTS_SUPER_MAGIC ? statSync(pts).dev : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Is the master of pty `index` of the devpts instance `dev` held by a task
 * we are dumping (one we trace)? Two instances (a container's and the
 * host's) hand out the same indexes: a master of another instance with
 * the same index is not this slave's.
 */
function masterInDump(index: number, dev: number): boolean {
  for (const pid of processesTracedBy(process.pid)) {
    const name = String(pid);
    try {
      for (const fd of readdirSync(`/proc/${name}/fd`)) {
        const link = readlinkSync(`/proc/${name}/fd/${fd}`);
        if (link !== '/dev/ptmx' && !link.endsWith('/ptmx')) continue;
        if (parseFdinfo(pid, Number(fd)).ttyIndex === index && devptsOfMaster(name, fd, link) === dev) return true;
      }
    } catch {
      // task or fd gone, or a thread-only entry: not a holder
    }
  }
  return false;
}

/** tty_info ids this dump has written */
const INFO_DONE = stateKey<Set<number>>('tty:info-done');

function dumpInfo(ctx: DumpContext, p: FdProbe, k: TtyKind, infoId: number): void {
  const done = ctx.memo(INFO_DONE, () => new Set<number>());
  if (done.has(infoId)) return;
  done.add(infoId);
  const st = readTtyState(p.localFd);
  const info: TtyInfoEntry = {
    id: infoId,
    type: k.what === 'ctty' ? 'CTTY' : 'PTY',
    locked: k.what === 'master' ? ioctlInt(p.localFd, IOC.TIOCGPTLCK) === 1 : false,
    exclusive: ioctlInt(p.localFd, IOC.TIOCGEXCL) === 1,
    packet_mode: k.what === 'master' ? ioctlInt(p.localFd, IOC.TIOCGPKT) === 1 : false,
    sid: 0,
    pgrp: 0,
    rdev: p.stat.rdev,
    dev: p.stat.dev,
  };
  if (k.what === 'master') {
    // On a master these answer whoever asks: the session the pty controls, and its foreground group,
    // in our pid namespace: written as the tree sees them (0: outside its pid namespace).
    const sid = ioctlInt(p.localFd, IOC.TIOCGSID) ?? 0;
    const pgrp = ioctlInt(p.localFd, IOC.TIOCGPGRP) ?? 0;
    info.sid = sid > 0 ? (ctx.vpid(sid) ?? 0) : 0;
    info.pgrp = pgrp > 0 ? (ctx.vpid(pgrp) ?? 0) : 0;
  }
  if (k.what === 'slave') {
    // TIOCGSID answers only inside the tty's session: take the task's own view instead.
    const ps = parseStat(p.pid);
    if (ps.ttyNr === p.stat.rdev) {
      // As the tree sees them (0: outside its pid namespace).
      info.sid = ctx.vpid(ps.session) ?? 0;
      info.pgrp = ps.tpgid > 0 ? (ctx.vpid(ps.tpgid) ?? 0) : 0;
    }
    // The owner of the /dev/pts node (fstat: the node may be gone already, for a hung-up slave).
    info.uid = treeUid(ctx, p.stat.uid);
    info.gid = treeGid(ctx, p.stat.gid);
  }
  if (st.termios) info.termios = st.termios;
  if (st.termiosLocked) info.termios_locked = st.termiosLocked;
  if (st.winsize) info.winsize = st.winsize;
  if (k.what !== 'ctty') info.pty = { index: k.index };
  ctx.emit('TTY_INFO', info);
}

/** CRIU's name of a terminal for --external and --inherit-fd: tty[rdev:dev], in hex. */
function ttyKey(rdev: number, dev: number): string {
  return `tty[${rdev.toString(16)}:${dev.toString(16)}]`;
}

export const ttyKind: FileKind = {
  name: 'tty',
  type: 'TTY',
  inheritKey(e: FileEntry, ctx: RestoreContext): string | undefined {
    const id = e.tty?.tty_info_id;
    if (id === undefined || id >= CTTY_INFO_ID) return undefined;
    const info = ttyInfo(ctx, id);
    return info.dev === undefined ? undefined : ttyKey(info.rdev, info.dev);
  },
  detect: (p: FdProbe) => classify(p) !== undefined,
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
    const k = classify(p);
    if (!k) throw new CriuTsError('EDUMP', `task ${p.pid} fd ${p.fd}: not a terminal`, { pid: p.pid, fd: p.fd });
    if (k.what !== 'ctty' && k.index < 0) throw new CriuTsError('EDUMP', `task ${p.pid} fd ${p.fd}: no pty index for ${p.link}`, { pid: p.pid, fd: p.fd });
    // A slave whose master was closed is hung up (its ioctls answer EIO): it comes back hung up.
    const hungUp = k.what === 'slave' && ioctlTry(p.localFd, IOC.TCGETS2, Buffer.alloc(44)) === -EIO;
    const external = ctx.opts.externals?.has(ttyKey(p.stat.rdev, p.stat.dev)) === true;
    if (k.what === 'slave' && !hungUp && !ctx.opts.shellJob && ctx.opts.orphanPtsMaster !== true && !external && !masterInDump(k.index, p.stat.dev)) {
      throw new CriuTsError('EUNSUPPORTED',
        `task ${p.pid} fd ${p.fd}: ${p.link} is a terminal whose master is outside the dump; use --shell-job to reopen it at restore (RPC: orphan_pts_master)`,
        { pid: p.pid, fd: p.fd, link: p.link });
    }
    if (k.what === 'master') {
      // In packet mode every read of the master carries a status byte: its queued bytes are refused.
      if (ioctlInt(p.localFd, IOC.TIOCGPKT) === 1) refuseQueued(p, p.link);
      // The pair's queues (both ways) are saved at the end of the dump.
      noteMaster(ctx, k.index, p.localFd);
    }
    const infoId = k.what === 'ctty' ? CTTY_INFO_ID : infoIdOf(k.index, k.what === 'master');
    dumpInfo(ctx, p, k, infoId);
    const flags = p.fdinfo.flags & ~O_CLOEXEC;
    const regfId = ctx.addFile((i) => regEntryForPath(i, p.link, flags, p.pid));
    return { type: 'TTY', id, tty: { id, tty_info_id: infoId, flags, fown: NO_FOWN, regf_id: regfId } };
  },
  group(e: FileEntry): string | undefined {
    // Only the master has a group of its own (it is made once, shared by every task that holds it).
    // A slave is opened in the task that uses it, after the master exists (tasks are restored
    // parents first), so a child's controlling terminal is set in the child itself.
    const info = e.tty?.tty_info_id;
    return info === undefined || info >= CTTY_INFO_ID || info % 2 === 0 ? undefined : `pty:${info >> 1}`;
  },
  restore(t: RestoreTaskHandle, e: FileEntry, _fdi, ctx: RestoreContext): number {
    const tty = part(e, 'tty', 'TTY');
    const info = ttyInfo(ctx, tty.tty_info_id);
    const path = ctx.fileById(tty.regf_id ?? -1)?.reg?.name;
    if (info.type === 'CTTY') return openCtty(t, path ?? '/dev/tty', tty.flags, ctx);
    const index = info.pty?.index ?? tty.tty_info_id >> 1;
    if (tty.tty_info_id & 1) return createMaster(t, info, tty.flags, ctx, path);
    const masterFile = fileOfInfo(ctx, infoIdOf(index, true));
    if (masterFile === undefined) {
      // Dumped hung up (no termios could be read): made hung up again.
      if (!info.termios) return openHungUp(t, info, index, tty.flags, ctx);
      const give = ctx.opts.orphanPtsMaster;
      if (give !== undefined) return openOrphan(t, info, index, tty.flags, ctx, give);
      if (!ctx.opts.shellJob) {
        throw new CriuTsError('EUNSUPPORTED', `task ${t.pid}: ${path ?? `pts ${index}`} belongs to a terminal outside the dump; restore with --shell-job`, { pid: t.pid, index });
      }
      return openPath(t, path ?? `/dev/pts/${index}`, tty.flags | O_NOCTTY);
    }
    if (!restored(ctx).masters.has(index)) {
      const m = masterFile;
      ctx.provide(m.id, createMaster(t, ttyInfo(ctx, infoIdOf(index, true)), m.tty?.flags ?? 2, ctx, ctx.fileById(m.tty?.regf_id ?? -1)?.reg?.name));
    }
    const fd = openPath(t, `/dev/pts/${index}`, tty.flags | O_NOCTTY);
    takeIfLeader(t, fd, info);
    writeTtyState(t, fd, info);
    setOwner(t, fd, info, index, ctx);
    return fd;
  },
  sessionMade: takeControllingTerminal,
  neededBy(e: FileEntry, ctx: RestoreContext): readonly number[] {
    // A master is needed by the session leader whose controlling terminal its slave is.
    const id = e.tty?.tty_info_id;
    if (id === undefined || id >= CTTY_INFO_ID || id % 2 === 0) return [];
    const sid = ctx.kindImage('TTY_INFO').entries.find((x) => x.id === id)?.sid ?? 0;
    return sid > 0 ? [sid] : [];
  },
};

/**
 * The slave's node gets its dumped owner back, from our side (devpts
 * belongs to nobody else), through the task's fd on it: the node of its
 * own devpts instance, which may have no path here.
 */
function setOwner(t: RestoreTaskHandle, fd: number, info: TtyInfoEntry, index: number, ctx: RestoreContext): void {
  if (info.uid === undefined || info.gid === undefined) return;
  const o = hostOwner(ctx, info.uid, info.gid, `/dev/pts/${index}`);
  chownSync(`/proc/${t.pid}/fd/${fd}`, o.uid, o.gid);
}

/**
 * A slave whose master was closed before the dump: a master of our own
 * takes its index, the slave is opened in the task, and our master is
 * closed once every task's files exist, which hangs the slave up again.
 */
/** The slave becomes the controlling terminal of the session it leads (and its foreground group, once that exists). */
function takeIfLeader(t: RestoreTaskHandle, fd: number, info: TtyInfoEntry): void {
  if (info.sid === 0 || info.sid !== t.vpid) return;
  t.syscall('ioctl(TIOCSCTTY)', NR.ioctl, fd, IOC.TIOCSCTTY, 0);
  if (info.pgrp === 0) return;
  // The group may be created later (by a child): then it stays the leader's.
  const own = pidSeenBy(t, info.pgrp, 'its terminal\'s foreground group');
  try {
    t.syscall('ioctl(TIOCSPGRP)', NR.ioctl, fd, IOC.TIOCSPGRP, intArg(t, own));
  } catch {
    // not there yet
  }
}

/**
 * A slave whose master was outside the dump, with orphan_pts_master (runc's
 * console: the master went to its console socket): a new master is made at
 * the dumped index in our process, the slave opened in the task as it was,
 * and the master handed to whoever asked (the RPC client gets it over its
 * socket, as CRIU sends it in the orphan-pts-master notification). One
 * master per index, however many fds and tasks hold the slave.
 */
function openOrphan(
  t: RestoreTaskHandle, info: TtyInfoEntry, index: number, flags: number, ctx: RestoreContext, give: (master: number) => void,
): number {
  const orphans = restored(ctx).orphans;
  if (!orphans.has(index)) {
    const master = ptmxAt(t, index);
    orphans.add(index);
    give(master); // the receiver owns it from here, also when the restore fails later
  }
  const fd = openPath(t, `/dev/pts/${index}`, flags | O_NOCTTY);
  takeIfLeader(t, fd, info);
  writeTtyState(t, fd, info);
  setOwner(t, fd, info, index, ctx);
  return fd;
}

function openHungUp(t: RestoreTaskHandle, info: TtyInfoEntry, index: number, flags: number, ctx: RestoreContext): number {
  const fakes = restored(ctx).fakeMasters;
  if (!fakes.has(index)) {
    if (fakes.size === 0) {
      ctx.afterAllFiles(() => {
        for (const fd of fakes.values()) closeSync(fd);
        fakes.clear();
      }, { alsoOnFailure: true });
    }
    fakes.set(index, ptmxAt(t, index));
  }
  const fd = openPath(t, `/dev/pts/${index}`, flags | O_NOCTTY);
  setOwner(t, fd, info, index, ctx);
  return fd;
}

/**
 * /dev/tty opens only once the task has its controlling terminal: when it
 * comes first in fd order, restore the pty slave that is the task's
 * controlling terminal first (it is one of this task's files).
 */
function openCtty(t: RestoreTaskHandle, path: string, flags: number, ctx: RestoreContext): number {
  try {
    return openPath(t, path, flags);
  } catch (err) {
    const mine = new Set(taskFdinfo(ctx, t.vpid).map((f) => f.id));
    const slave = ttyFiles(ctx).find((f) => {
      const id = f.tty?.tty_info_id;
      return id !== undefined && id < CTTY_INFO_ID && id % 2 === 0 && mine.has(f.id) && ttyInfo(ctx, id).sid === t.vpid;
    });
    const cttyDone = restored(ctx).slaveFirst;
    if (!slave || cttyDone.has(t.pid)) throw err;
    cttyDone.add(t.pid);
    ctx.provide(slave.id, ttyKind.restore(t, slave, { id: slave.id, flags: 0, type: 'TTY', fd: -1 }, ctx));
    return openPath(t, path, flags);
  }
}

/** Open /dev/ptmx until the kernel hands out `info`'s index; then modes and state. */
function createMaster(t: RestoreTaskHandle, info: TtyInfoEntry, flags: number, ctx: RestoreContext, path: string | undefined): number {
  const want = info.pty?.index ?? info.id >> 1;
  const premade = restored(ctx).premade.get(want);
  let fd: number;
  if (premade !== undefined) {
    // Made while the mounts were built (its slave is bind-mounted): that very pair, handed to the task.
    fd = installFd(t, premade);
    closeSync(premade);
    restored(ctx).premade.delete(want);
    const status = flags & ~(O_ACCMODE | O_CLOEXEC);
    if (status !== 0) t.syscall('fcntl(F_SETFL)', NR.fcntl, fd, F_SETFL, status);
  } else {
    fd = openPtmxAt(t, want, flags, path !== undefined && /(^|\/)ptmx$/.test(path) ? path : undefined);
  }
  if (!info.locked) t.syscall('ioctl(TIOCSPTLCK)', NR.ioctl, fd, IOC.TIOCSPTLCK, intArg(t, 0));
  if (info.packet_mode) t.syscall('ioctl(TIOCPKT)', NR.ioctl, fd, IOC.TIOCPKT, intArg(t, 1));
  if (info.exclusive) t.syscall('ioctl(TIOCEXCL)', NR.ioctl, fd, IOC.TIOCEXCL, 0);
  writeTtyState(t, fd, info);
  restored(ctx).masters.set(want, fd);
  // Bytes queued in the pair go in once every task's files (and so every slave) exist.
  if (hasQueues(ctx, want)) {
    const ours = fdOfTask(t.pid, fd);
    ctx.afterAllFiles(() => {
      try {
        restoreQueues(ctx, want, ours);
      } finally {
        closeSync(ours);
      }
    });
  }
  return fd;
}
