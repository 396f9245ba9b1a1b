/**
 * The time namespace (CLONE_NEWTIME): per-namespace offsets of
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME. As CRIU does, the dump records the
 * two clocks as the tree sees them (timens-<ns id>.img, timens_entry
 * {monotonic, boottime}), and the restore makes a new time namespace whose
 * offsets let both clocks go on from those values: for the tree no time
 * passed between dump and restore. The namespace is made in the root's
 * parent (the restore stub) by an injected unshare(CLONE_NEWTIME), its
 * offsets written to the parent's /proc/PID/timens_offsets (which name
 * the namespace of its next children, empty until then), and the root is
 * born inside. A root restored in a user namespace of its own makes the
 * time namespace itself instead, so that it is owned by that user
 * namespace: unshare, offsets, then setns into it (restoreCreated).
 *
 * Limits (refused with one line): a task inside the tree in another time
 * namespace than the root's (nested); a task whose next children would be
 * born in another one than its own (time_for_children, refused by the
 * core, dump/namespaces.ts); at restore for an unprivileged RPC caller
 * (offsets take CAP_SYS_TIME). CLOCK_REALTIME has no offset in the kernel.
 */
import { writeFileSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { imageFile } from '../../images/index.js';
import { nsLinkOf, readTimensOffsets } from '../../proc/index.js';
import { CLOCK, clockGettimeNs, NR, CLONE_NEWTIME, AT_FDCWD, O_RDONLY, O_CLOEXEC } from '../../sys/index.js';
import type { TimensEntry } from '../../images/messages.js';
import { stateKey, type DumpContext, type RestoreContext } from '../types.js';
import type { ResourceKind } from '../resource-kind.js';

const NS_PER_SEC = 1_000_000_000n;

/** At dump: the root's pid, when the tree has a time namespace of its own. */
const DUMP_ROOT = stateKey<{ rootPid: number | undefined }>('time-ns:root');
/** At restore: the clocks to go on from, and which task is born in the new namespace. */
const CLOCKS = stateKey<{ rootPid: number; entry: TimensEntry; inUserNs: boolean } | { rootPid: undefined }>('time-ns:clocks');

const spec = (ns: bigint): { tv_sec: bigint; tv_nsec: bigint } => ({ tv_sec: ns / NS_PER_SEC, tv_nsec: ns % NS_PER_SEC });
const nsOf = (t: { tv_sec: bigint; tv_nsec: bigint }): bigint => t.tv_sec * NS_PER_SEC + t.tv_nsec;

function dumpTree(tree: Parameters<NonNullable<ResourceKind['dumpTree']>>[0], ctx: DumpContext): void {
  const root = nsLinkOf(tree.rootPid, 'time');
  const own = root !== undefined && root !== nsLinkOf(process.pid, 'time');
  ctx.memo(DUMP_ROOT, () => ({ rootPid: own ? tree.rootPid : undefined }));
  if (!own) return;
  for (const t of tree.tasks) {
    if (t.zombie) continue;
    const theirs = nsLinkOf(t.pid, 'time');
    if (theirs !== root) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} is in a time namespace nested in the tree's (${String(theirs)}; the root's is ${root}): nested time namespaces are not supported`, { pid: t.pid, namespace: 'time' });
    }
  }
}

function dumpTask(task: Parameters<NonNullable<ResourceKind['dumpTask']>>[0], ctx: DumpContext): void {
  if (ctx.memo(DUMP_ROOT, () => ({ rootPid: undefined })).rootPid !== task.pid) return;
  const id = task.ids.time_ns_id;
  if (id === undefined) return;
  // The clocks as the tree sees them: ours, less our namespace's offsets, plus the tree's.
  const ours = readTimensOffsets('self');
  const theirs = readTimensOffsets(task.pid);
  const entry: TimensEntry = {
    monotonic: spec(clockGettimeNs(CLOCK.MONOTONIC) - ours.monotonic + theirs.monotonic),
    boottime: spec(clockGettimeNs(CLOCK.BOOTTIME) - ours.boottime + theirs.boottime),
  };
  ctx.saveImage('TIMENS', id, [entry]);
}

/** Offsets of the time namespace `pid`'s next children are born in, so that its clocks go on from the dumped values. */
function setOffsets(pid: number, task: number, entry: TimensEntry): void {
  // Offsets are absolute (from the host's clocks): the dumped clock less the host's now.
  const ours = readTimensOffsets('self');
  const mono = nsOf(entry.monotonic) - (clockGettimeNs(CLOCK.MONOTONIC) - ours.monotonic);
  const boot = nsOf(entry.boottime) - (clockGettimeNs(CLOCK.BOOTTIME) - ours.boottime);
  const line = (clock: number, ns: bigint): string => {
    const sec = ns >= 0n ? ns / NS_PER_SEC : -((-ns + NS_PER_SEC - 1n) / NS_PER_SEC);
    return `${clock} ${sec} ${ns - sec * NS_PER_SEC}\n`;
  };
  try {
    writeFileSync(`/proc/${pid}/timens_offsets`, line(CLOCK.MONOTONIC, mono) + line(CLOCK.BOOTTIME, boot));
  } catch (e) {
    throw new CriuTsError('ERESTORE', `task ${task}: cannot set the clock offsets of its new time namespace: ${(e as Error).message}`, { pid: task }, e);
  }
}

function prepareRestore(tree: Parameters<NonNullable<ResourceKind['prepareRestore']>>[0], ctx: RestoreContext): void {
  const root = tree.tasks.find((t) => t.pid === tree.rootPid);
  const id = root?.ids?.time_ns_id;
  const ours = tree.rootIds?.time_ns_id;
  if (id === undefined || ours === undefined || id === ours) {
    ctx.state(CLOCKS, () => ({ rootPid: undefined }));
    return;
  }
  for (const t of tree.tasks) {
    const got = t.ids?.time_ns_id;
    if (got !== undefined && got !== id) {
      throw new CriuTsError('EUNSUPPORTED', `task ${t.pid} was dumped in a time namespace nested in the tree's (ns id ${got}): nested time namespaces are not supported`, { pid: t.pid, nsId: got });
    }
  }
  // Setting clock offsets takes CAP_SYS_TIME: nothing a caller without it could do itself (docs/security.md).
  if (ctx.opts.unprivileged) {
    throw new CriuTsError('EPERM', `not restored for an unprivileged caller: task ${tree.rootPid} would be in a time namespace of its own`, { pid: tree.rootPid, errno: 1 });
  }
  const file = imageFile('TIMENS', id);
  const entry = ctx.image('TIMENS', id)?.entries[0];
  if (!entry) throw new CriuTsError('ENOIMAGE', `${file}: missing (the root's time namespace, ns id ${id})`, { file });
  // A root restored in a user namespace of its own makes its time namespace itself, owned by it (restoreCreated).
  const user = root?.ids?.user_ns_id;
  const inUserNs = user !== undefined && tree.rootIds?.user_ns_id !== undefined && user !== tree.rootIds.user_ns_id;
  ctx.state(CLOCKS, () => ({ rootPid: tree.rootPid, entry, inUserNs }));
}

export const timeNsKind: ResourceKind = {
  name: 'time-ns',
  namespaces: ['time'],
  dumpTree,
  dumpTask,
  prepareRestore,
  beforeClone(parent, task, ctx): void {
    const st = ctx.state(CLOCKS, () => ({ rootPid: undefined }));
    // A sibling root is not born from `parent`: it makes its namespace itself, below.
    if (st.rootPid === undefined || task.pid !== st.rootPid || st.inUserNs || ctx.opts.restoreSibling) return;
    parent.syscall('unshare(CLONE_NEWTIME)', NR.unshare, CLONE_NEWTIME);
    setOffsets(parent.pid, task.pid, st.entry);
  },
  /**
   * A root born in a user namespace of its own (or from criu-ts itself,
   * --restore-sibling: no parent of ours to unshare in): the time namespace must be
   * owned by it, so the root makes it (unshare: its next children's), we
   * set the offsets before anyone is inside, and the root enters it
   * (setns on its time_for_children; it is single-threaded yet).
   */
  restoreCreated(t, task, ctx): void {
    const st = ctx.state(CLOCKS, () => ({ rootPid: undefined }));
    if (st.rootPid === undefined || task.pid !== st.rootPid || !(st.inUserNs || ctx.opts.restoreSibling)) return;
    t.syscall('unshare(CLONE_NEWTIME)', NR.unshare, CLONE_NEWTIME);
    setOffsets(t.pid, task.pid, st.entry);
    const path = '/proc/self/ns/time_for_children';
    const fd = Number(t.syscall(`open ${path}`, NR.openat, AT_FDCWD, t.putString(path), O_RDONLY | O_CLOEXEC, 0));
    try {
      t.syscall('setns(CLONE_NEWTIME)', NR.setns, fd, CLONE_NEWTIME);
    } finally {
      t.syscall('close', NR.close, fd);
    }
  },
};
