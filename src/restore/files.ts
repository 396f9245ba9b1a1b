/**
 * Open files of a restored task: every fdinfo entry is re-created by its
 * kind inside the task, parked at or above `base` — higher than any fd
 * number the dump uses — so creating one file can never land on another's
 * final number, then moved to its number with dup3 (FD_CLOEXEC as dumped).
 * Entries sharing a file id share one open file description. Files used by
 * several tasks were opened earlier by their common ancestor (openGroupFiles)
 * and are inherited, already parked, through fork.
 */
import {
  NR, AF_UNIX, SOCK_DGRAM, pidfdOpen, pidfdGetfd, closeQuiet, dup, sendmsgRights, O_CLOEXEC, FD_CLOEXEC, F_SETFD,
  F_DUPFD,
} from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { listFds } from '../proc/index.js';
import { imageFile } from '../images/index.js';
import { fileKindByType, stateKey, fownOf, restoreFown, installFd, type RestoreTaskHandle, type RestoreContext, type FileKind } from '../kinds/index.js';
import type { FdinfoEntry, FileEntry } from '../images/messages.js';
import type { Tracee } from '../infect/tracee.js';
import { call, runEach, type Steps } from '../kinds/steps.js';

const CLOSE_RANGE_ALL = 0xffffffff;

function kindOf(e: FileEntry | undefined, id: number, pid: number): { e: FileEntry; kind: FileKind } {
  if (!e) throw new CriuTsError('EIMAGE', `task ${pid} refers to file id ${id}, not in ${imageFile('FILES')}`, { id, pid });
  const kind = fileKindByType(e.type);
  if (!kind) throw new CriuTsError('EUNSUPPORTED', `task ${pid}: files of type ${String(e.type)} (id ${id}) cannot be restored yet`, { id, type: e.type });
  return { e, kind };
}

/** Our fd for a file the caller handed over with --inherit-fd, if it did (by the key its kind names it by). */
function inheritedFd(e: FileEntry, kind: FileKind, ctx: RestoreContext): number | undefined {
  const map = ctx.opts.inheritFds;
  if (map === undefined || map.size === 0) return undefined;
  const key = kind.inheritKey?.(e, ctx);
  return key === undefined ? undefined : map.get(key);
}

function parker(t: RestoreTaskHandle, base: number): (fd: number) => number {
  return (fd) => {
    if (fd >= base) return fd;
    const high = Number(t.syscall('fcntl(F_DUPFD)', NR.fcntl, fd, F_DUPFD, base));
    t.syscall('close', NR.close, fd);
    return high;
  };
}

/**
 * Open the files a task holds for its descendants (file groups shared by
 * several tasks), parked at or above `base`. Adds them to `held`, and the
 * ids created here to `toFinish`: their `finish` runs later
 * (finishGroupFiles), once every task's fd table is final.
 */
export function openGroupFiles(
  t: RestoreTaskHandle, ids: readonly number[], fdinfoOf: (id: number) => FdinfoEntry,
  ctx: RestoreContext, held: Map<number, number>, base: number, toFinish: number[],
): void {
  const park = parker(t, base);
  const taskCtx: RestoreContext = { ...ctx, provide: (id, fd) => held.set(id, park(fd)) };
  for (const id of ids) {
    if (held.has(id)) continue;
    const { e, kind } = kindOf(ctx.fileById(id), id, t.pid);
    const inherited = inheritedFd(e, kind, ctx);
    if (inherited !== undefined) {
      // The caller's own open file: nothing of the kind runs on it (no queued data, no finish).
      held.set(id, park(installFd(t, inherited)));
      continue;
    }
    const copy = inFlightCopy(ctx, id);
    const fd = park(copy === undefined ? kind.restore(t, e, fdinfoOf(id), taskCtx) : installFd(t, copy));
    held.set(id, fd);
    toFinish.push(id);
  }
}

/**
 * `finish` of files created for several tasks, run when every task's fds
 * are at their final numbers and no parked copy is left: in the first task
 * (in dump order, the one whose fd numbers the dump recorded) that uses the
 * file, through its own fd.
 */
export function finishGroupFiles(
  ids: readonly number[], users: readonly { pid: number; handle: () => RestoreTaskHandle; fds: readonly FdinfoEntry[] }[],
  ctx: RestoreContext,
): void {
  for (const id of ids) {
    const { e, kind } = kindOf(ctx.fileById(id), id, 0);
    if (!kind.finish) continue;
    const user = users.find((u) => u.fds.some((f) => f.id === id));
    const fdi = user?.fds.find((f) => f.id === id);
    if (!user || !fdi) continue; // created only to be inherited on the way (e.g. the other end of a pipe nobody kept)
    kind.finish(user.handle(), e, fdi.fd, { ...ctx, provide: () => {} });
  }
}

/**
 * Put a task's fds at their numbers. The stub's own fds are closed first;
 * then the fds are installed in increasing order, so the fd a kind's open
 * returns (the lowest free one) is never above the number being installed
 * and never one a later entry needs: it is moved there with one dup3, or is
 * already right. Only files handed over from elsewhere (inherited from an
 * ancestor, or provided as the other end of a pair) wait parked at `base`
 * and above, so a task with many fds needs no room for a second copy of
 * its table under RLIMIT_NOFILE.
 */
export function restoreFds(
  t: RestoreTaskHandle, fds: FdinfoEntry[], ctx: RestoreContext, inherited: ReadonlyMap<number, number>, base: number,
): void {
  // The stub's own fds go first; nothing of it may leak into the restored
  // task. With no file parked for it (none inherited), all of them at once.
  const none = inherited.size === 0;
  if (none) t.syscall('close_range', NR.close_range, 0, CLOSE_RANGE_ALL, 0);
  else if (base > 0) t.syscall('close_range', NR.close_range, 0, base - 1, 0);
  const park = parker(t, base);
  const opened = new Map<number, number>(inherited); // file id → an fd in the task holding it
  const created: { kind: FileKind; e: FileEntry; fd: number }[] = [];
  let asAsked: number | undefined;
  const taskCtx: RestoreContext = {
    ...ctx, provide: (id, fd) => opened.set(id, park(fd)), cloexecAsAsked: (fd) => {
      asAsked = fd;
    },
  };
  const cloexec = (fdi: FdinfoEntry): number => (fdi.flags & FD_CLOEXEC ? O_CLOEXEC : 0);
  // The owner (F_SETOWN/F_SETSIG) belongs to the description: set once per
  // file in this task, whichever way its fd came (made here, provided by
  // another file's restore, or inherited from a group file).
  const owned = new Set<number>();
  const setOwner = (fdi: FdinfoEntry): void => {
    if (owned.has(fdi.id)) return;
    owned.add(fdi.id);
    const e = ctx.fileById(fdi.id);
    if (e) restoreFown(t, fdi.fd, fownOf(e));
  };
  for (const fdi of [...fds].sort((a, b) => a.fd - b.fd)) {
    const held = opened.get(fdi.id);
    if (held !== undefined) {
      t.syscall(`dup3(${held}, ${fdi.fd})`, NR.dup3, held, fdi.fd, cloexec(fdi));
      setOwner(fdi);
      continue;
    }
    const { e, kind } = kindOf(ctx.fileById(fdi.id), fdi.id, t.pid);
    // A file made along with one in flight is that very file, and one the caller handed over (--inherit-fd)
    // is the caller's: either way its kind has nothing more to do.
    const inherited = inheritedFd(e, kind, ctx);
    const copy = inherited ?? inFlightCopy(ctx, fdi.id);
    asAsked = undefined;
    const got = copy === undefined ? kind.restore(t, e, fdi, taskCtx) : installFd(t, copy);
    if (got === fdi.fd) {
      if (asAsked !== got) t.syscall(`fcntl(${got}, F_SETFD)`, NR.fcntl, got, F_SETFD, fdi.flags & FD_CLOEXEC ? FD_CLOEXEC : 0);
    } else {
      t.syscall(`dup3(${got}, ${fdi.fd})`, NR.dup3, got, fdi.fd, cloexec(fdi));
      t.syscall('close', NR.close, got);
    }
    opened.set(fdi.id, fdi.fd);
    if (copy === undefined) created.push({ kind, e, fd: fdi.fd });
    setOwner(fdi);
  }
  // Data that goes in once per object (queued bytes), now that every fd exists.
  for (const c of created) c.kind.finish?.(t, c.e, c.fd, taskCtx);
  // What is left at `base` and above (parked, or a kind's own) goes; where
  // nothing was there to begin with, only if /proc shows something now.
  if (!none || fdsFrom(t.pid, base)) t.syscall('close_range', NR.close_range, base, CLOSE_RANGE_ALL, 0);
}

/** Whether task `pid` has an fd numbered `base` or above (where its /proc cannot tell: yes). */
function fdsFrom(pid: number, base: number): boolean {
  try {
    return listFds(pid).some((fd) => fd >= base);
  } catch {
    return true;
  }
}

/**
 * The fd tables of tasks whose every fd is a file an ancestor opened for
 * it (inherited, parked at `base` and above) and whose description has no
 * owner to set: what restoreFds does for them (the stub's fds closed, one
 * dup3 per fd, the parked copies closed), as one step procedure per task,
 * every task's side by side (kinds/steps.ts runEach). Returns the tasks it
 * did; the others are left to restoreFds.
 */
export function restoreInheritedFdsEach(
  tasks: readonly { tracee: Tracee; fds: readonly FdinfoEntry[]; inherited: ReadonlyMap<number, number> }[], ctx: RestoreContext, base: number,
): Set<Tracee> {
  const quick = tasks.filter((t) => t.fds.every((f) => t.inherited.has(f.id) && !hasOwner(ctx.fileById(f.id))));
  runEach(quick.map((t) => ({ tracee: t.tracee, steps: inheritedFdSteps(t.fds, t.inherited, base) })));
  return new Set(quick.map((t) => t.tracee));
}

function hasOwner(e: FileEntry | undefined): boolean {
  const f = e ? fownOf(e) : undefined;
  return f !== undefined && (f.signum !== 0 || f.pid !== 0);
}

function* inheritedFdSteps(fds: readonly FdinfoEntry[], inherited: ReadonlyMap<number, number>, base: number): Steps {
  if (base > 0) yield* call('close_range', NR.close_range, 0, base - 1, 0);
  for (const fdi of [...fds].sort((a, b) => a.fd - b.fd)) {
    yield* call(`dup3(${fdi.fd})`, NR.dup3, inherited.get(fdi.id) as number, fdi.fd, fdi.flags & FD_CLOEXEC ? O_CLOEXEC : 0);
  }
  yield* call('close_range', NR.close_range, base, CLOSE_RANGE_ALL, 0);
}

/** Our copies of files in flight that a kind made along with another (the other end of a pipe), by file id. */
type InFlightCopies = Map<number, number>;

/**
 * A file that was in flight in a socket queue: made by its kind inside task
 * `t`, then taken into our process (pidfd_getfd) and closed in the task, so
 * nothing of it stays there. Files the kind makes along with it (ctx.provide)
 * are taken too and kept for when their own message asks for them; copies
 * nobody asked for are closed when every file is done.
 */
export function openInFlight(t: RestoreTaskHandle, id: number, ctx: RestoreContext): number {
  const copies = copiesOf(ctx);
  const have = copies.get(id);
  if (have !== undefined) return dup(have);
  const { e, kind } = kindOf(ctx.fileById(id), id, t.pid);
  const pidfd = pidfdOpen(t.pid);
  const take = (fd: number): number => {
    try {
      return pidfdGetfd(pidfd, fd, t.pid);
    } finally {
      t.syscall('close', NR.close, fd);
    }
  };
  try {
    const along: [number, number][] = [];
    const fd = kind.restore(t, e, { id, flags: 0, type: e.type, fd: -1 }, { ...ctx, provide: (pid, pfd) => along.push([pid, pfd]), cloexecAsAsked: () => {} });
    for (const [pid, pfd] of along) copies.set(pid, take(pfd));
    const ours = take(fd);
    copies.set(id, ours);
    return dup(ours);
  } finally {
    closeQuiet(pidfd);
  }
}

/** Our copy of file `id` if it was made along with a file in flight (then a task gets that very file). */
function inFlightCopy(ctx: RestoreContext, id: number): number | undefined {
  return copiesOf(ctx).get(id);
}

const IN_FLIGHT_COPIES = stateKey<InFlightCopies>('files:in-flight-copies');

function copiesOf(ctx: RestoreContext): InFlightCopies {
  return ctx.state(IN_FLIGHT_COPIES, () => {
    const made: InFlightCopies = new Map();
    ctx.afterAllFiles(() => {
      for (const fd of made.values()) closeQuiet(fd);
      made.clear();
    }, { alsoOnFailure: true });
    return made;
  });
}

export { installFd };
