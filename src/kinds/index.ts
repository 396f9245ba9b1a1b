/**
 * The one registry of resource kinds: KINDS, one list of every resource
 * that is dumped and restored, each entry with its dump and restore side by
 * side and the scopes it runs at (kind.ts: per tree, per task, per fd).
 * The core reaches the kinds only through this module: it walks the views
 * below, each KINDS filtered to one scope in list order, and learns no kind
 * by name. Add a kind here and nowhere else.
 *
 * The order of KINDS is the order the core calls the kinds at each point of
 * a scope (views keep it), and it carries these constraints:
 * - namespaces: the user namespace first (the root is born in it, its maps
 *   are written before anything else is done in the root, and the
 *   namespaces the later kinds unshare are then owned by it); the cgroups
 *   after the namespaces; the mount namespace last (the tree's mounts are
 *   made in the root once it is in every other namespace of its own: a
 *   proc, mqueue, sysfs or cgroup mount shows the namespaces of the task
 *   that makes it);
 * - open files: `detect` is asked in order, so a kind whose fds are also
 *   path-named files (anon inodes, memfd, ttys, a tun device, a locked
 *   regular file, namespace files) comes before pipes, FIFOs and unix
 *   sockets, then TCP/UDP, packet and netlink sockets, and REG, which
 *   takes any path-named file, last;
 * - address space: one kind (space.ts), its frame made before the task's
 *   children are forked where it can be, its file mappings after the fds;
 * - task core: each restore point (task/types.ts) runs its kinds in order;
 * - thread core: at a thread's final point, its pending signals, then its
 *   seccomp filters (installed while the thread still has criu-ts's
 *   privileges), then its credentials, then the parent-death signal (a
 *   change of ids clears it).
 */
import type { DumpContext, DumpKindOptions, FileKind, FdProbe } from './types.js';
import type { ResourceKind } from './resource-kind.js';
import type { Kind } from './kind.js';
import type { NsKind } from '../images/index.js';
import type { FileEntry, TaskCoreEntry } from '../images/messages.js';
import type { ProcStatus } from '../proc/index.js';
import type { Tracee } from '../infect/tracee.js';
import type { RestoreTaskHandle } from './types.js';
import type { StepCall } from './steps.js';
import type {
  BornThread, DumpThreadView, RestoreThreadView, TaskRestorePoint, TaskStateKind, ThreadAnswers, ThreadKind, ThreadRestorePoint, ThreadsToAsk,
} from './task/types.js';
import type { StepHandle, Steps } from './steps.js';
import { CriuTsError } from '../errors.js';
import { fdKind, taskKind, threadKind, treeKind } from './kind.js';
import { userNsKind } from './ns/user.js';
import { pidNsKind } from './ns/pid.js';
import { timeNsKind } from './ns/time.js';
import { utsKind } from './ns/uts.js';
import { ipcKind } from './ns/ipc.js';
import { netKind } from './ns/net.js';
import { cgroupKind } from './cgroup/index.js';
import { sigactionsKind } from './task/sigactions.js';
import { timersKind } from './task/timers.js';
import { limitsKind } from './task/limits.js';
import { attrsKind, subreaperKind } from './task/attrs.js';
import { signalsKind, threadSignalsKind } from './task/signals.js';
import { threadStateKind } from './task/thread.js';
import { seccompThreadKind, seccompTreeKind } from './task/seccomp.js';
import { credsKind } from './task/creds.js';
import { pdeathKind } from './task/pdeath.js';
import { eventfdKind } from './files/eventfd.js';
import { epollKind } from './files/epoll.js';
import { timerfdKind } from './files/timerfd.js';
import { signalfdKind } from './files/signalfd.js';
import { inotifyKind } from './files/inotify.js';
import { fanotifyKind } from './files/fanotify.js';
import { memfdKind } from './files/memfd.js';
import { ttyKind } from './files/tty/tty.js';
import { tunFileKind } from './files/tun-file.js';
import { lockedRegKind } from './files/file-locks.js';
import { pidfdKind } from './files/pidfd.js';
import { nsFileKind } from './files/ns-file.js';
import { pipeKind } from './files/pipe.js';
import { fifoKind } from './files/fifo.js';
import { unixSocketKind } from './files/unix-socket/index.js';
import { inetSocketKind } from './files/inet-socket/index.js';
import { netLockKind } from './files/inet-socket/net-lock-kind.js';
import { packetSocketKind } from './files/packet-socket/index.js';
import { netlinkSocketKind } from './files/netlink-socket/index.js';
import { regFileKind } from './files/reg-file.js';
import { mqueueKind } from './files/mqueue.js';
import { remapsKind } from './files/ghost/remaps-kind.js';
import { mntKind } from './ns/mnt/index.js';
import { memorySpaceKind } from './memory/space.js';
import type { AddressSpaceKind } from './space.js';

const REGISTRY = [
  // Namespaces, the user namespace first; then the cgroups.
  treeKind(userNsKind), treeKind(pidNsKind), treeKind(timeNsKind), treeKind(utsKind), treeKind(ipcKind), treeKind(netKind),
  treeKind(cgroupKind),
  // The task core's own fields, and each thread's: its pending signals are
  // one kind at two scopes (the shared queue per task, its own per thread);
  // seccomp writes one image per tree of the filters its threads hold.
  taskKind(sigactionsKind), taskKind(timersKind), taskKind(limitsKind), taskKind(attrsKind),
  threadKind(threadStateKind),
  { name: 'pending-signals', task: signalsKind, thread: threadSignalsKind },
  taskKind(subreaperKind),
  { name: 'seccomp', tree: seccompTreeKind, thread: seccompThreadKind },
  threadKind(credsKind),
  threadKind(pdeathKind),
  // The task's address space: the frame the rest of it is restored into.
  { name: 'memory', space: memorySpaceKind },
  // Open files: special files before REG would take them as path-named files.
  fdKind(eventfdKind), fdKind(epollKind), fdKind(timerfdKind), fdKind(signalfdKind), fdKind(inotifyKind), fdKind(fanotifyKind),
  fdKind(memfdKind), fdKind(ttyKind), fdKind(tunFileKind), fdKind(lockedRegKind), fdKind(pidfdKind), fdKind(nsFileKind), fdKind(mqueueKind),
  fdKind(pipeKind), fdKind(fifoKind), fdKind(unixSocketKind),
  // TCP sockets and the network lock that holds their packets while they are away: one kind at two scopes.
  { name: 'inet-socket', fd: inetSocketKind, tree: netLockKind }, fdKind(packetSocketKind), fdKind(netlinkSocketKind),
  // REG takes any path-named file; its tree facet makes the ghost files and link remaps they need on disk.
  { name: 'reg', fd: regFileKind, tree: remapsKind },
  // The mount namespace last.
  treeKind(mntKind),
] as const;

/** Every kind, in the order the core calls them (above). */
export const KINDS: readonly Kind[] = REGISTRY;

/** The kinds of open files (per fd): `detect` is asked in this order. */
export const FILE_KINDS: readonly FileKind[] = KINDS.flatMap((k) => (k.fd ? [k.fd] : []));
/** The kinds that run per tree and per created task (namespaces, cgroups, mounts), in call order. */
export const RESOURCE_KINDS: readonly ResourceKind[] = KINDS.flatMap((k) => (k.tree ? [k.tree] : []));
/** The kinds of the task core (per task), in call order at each restore point. */
export const TASK_STATE_KINDS: readonly TaskStateKind[] = KINDS.flatMap((k) => (k.task ? [k.task] : []));
/** The kinds of the thread core (per thread), in call order at each restore point. */
export const THREAD_KINDS: readonly ThreadKind[] = KINDS.flatMap((k) => (k.thread ? [k.thread] : []));

/** The address-space kind: every task has exactly one address space, so exactly one entry has the facet. */
export function addressSpace(): AddressSpaceKind {
  if (space !== undefined) return space;
  const spaces = KINDS.flatMap((k) => (k.space ? [k.space] : []));
  const only = spaces[0];
  if (spaces.length !== 1 || only === undefined) throw new CriuTsError('EINTERNAL', `${spaces.length} kinds of address space in the registry, not one`, {});
  return (space = only);
}
let space: AddressSpaceKind | undefined;

export function fileKindFor(p: FdProbe): FileKind | undefined {
  return FILE_KINDS.find((k) => k.detect(p));
}

/** The entry of a file met by path outside any fd, by the one file kind that names paths (FileKind.byPath); returns its id. */
export function fileByPath(ctx: DumpContext, path: string, flags: number, pid: number, unlinked?: { openPath: string; what: string }): number {
  const k = FILE_KINDS.find((f) => f.byPath);
  if (!k?.byPath) throw new CriuTsError('EINTERNAL', 'no file kind names files by path', {});
  return k.byPath(ctx, path, flags, pid, unlinked);
}

export function fileKindByType(type: FileEntry['type']): FileKind | undefined {
  return FILE_KINDS.find((k) => k.type === type);
}

/** The dump options the kinds default from the host, for those the caller left out (ResourceKind.dumpDefaults). */
export function dumpOptionDefaults(): Partial<DumpKindOptions> {
  return Object.assign({}, ...RESOURCE_KINDS.map((k) => k.dumpDefaults?.() ?? {})) as Partial<DumpKindOptions>;
}

/** `check --feature` probes the kinds have, by CRIU's feature name (ResourceKind.probes). */
export function kindProbes(): ReadonlyMap<string, () => { ok: boolean; why?: string }> {
  return new Map(RESOURCE_KINDS.flatMap((k) => Object.entries(k.probes ?? {})));
}

/** The namespace types --join-ns may name: some kind joins it instead of making one (ResourceKind.joins). */
export function joinableNamespaces(): ReadonlySet<NsKind> {
  return new Set(RESOURCE_KINDS.flatMap((k) => k.joins ?? []));
}

/** The namespace types some kind saves and re-creates: a task in one of its own is not refused for it. */
export function handledNamespaces(): ReadonlySet<NsKind> {
  return new Set(RESOURCE_KINDS.flatMap((k) => k.namespaces ?? []));
}

type TaskFacetOf<E> = E extends { readonly task: infer T } ? T : never;
type FieldsOf<K> = K extends TaskStateKind<infer F> ? F : never;
type Intersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
/** The fields of the task core the task-state kinds fill together: each kind's own (those it always fills are required). */
export type TaskStateFields = Intersection<FieldsOf<TaskFacetOf<(typeof REGISTRY)[number]>>>;

/** Every task-state kind's fields of the task core, asked in the main thread (a step procedure). */
export function* taskStateSteps(t: Tracee, pid: number, status: ProcStatus): Generator<StepCall, TaskStateFields, bigint> {
  // Merged into one object (a spread per kind copied everything before it again, per task).
  const out: Partial<TaskCoreEntry> = {};
  for (const k of TASK_STATE_KINDS) Object.assign(out, yield* k.dump(t, pid, status));
  // Each task-state kind of the registry gave its fields (its dump's type), merged here: their intersection.
  return out as TaskStateFields;
}

/** Put back what the task-state kinds restore at `at`, in the registry's order. */
export function restoreTaskState(h: RestoreTaskHandle, tc: TaskCoreEntry, at: TaskRestorePoint): void {
  for (const k of TASK_STATE_KINDS) k.restore[at]?.(h, tc);
}

type ThreadFacetOf<E> = E extends { readonly thread: infer T } ? T : never;
type ThreadFieldsOf<K> = K extends ThreadKind<infer G> ? G : never;
/** The fields of the thread core the thread kinds fill together (those one always fills are required). */
export type ThreadCoreFields = Intersection<ThreadFieldsOf<ThreadFacetOf<(typeof REGISTRY)[number]>>>;

/** The questions every thread of `procs` answers (ThreadAnswers), asked side by side by the thread kind that asks them. */
export function askThreads(procs: readonly ThreadsToAsk[]): Map<Tracee, ThreadAnswers> {
  const asker = THREAD_KINDS.find((k) => k.ask);
  if (!asker?.ask) throw new CriuTsError('EINTERNAL', 'no thread kind asks the thread questions', {});
  return asker.ask(procs);
}

/** One thread's core: every thread kind's fields. */
export function dumpThreadCore(th: DumpThreadView): ThreadCoreFields {
  const out = {};
  for (const k of THREAD_KINDS) if (k.dump) Object.assign(out, k.dump(th));
  // Each thread kind of the registry gave its fields (its dump's type), merged here: their intersection.
  return out as ThreadCoreFields;
}

/**
 * What the thread kinds put back in one thread at `at`, as one step
 * procedure (their steps in the registry's order) and the most scratch
 * bytes any of them puts; undefined when no kind has work there.
 */
export function threadRestoreSteps(at: ThreadRestorePoint, th: RestoreThreadView): { make: (sh: StepHandle) => Steps; putBytes: number } | undefined {
  const steps = THREAD_KINDS.flatMap((k) => {
    const s = k.restore[at];
    return s ? [s] : [];
  });
  if (steps.length === 0) return undefined;
  return {
    *make(sh: StepHandle): Steps {
      for (const s of steps) yield* s.steps(sh, th);
    },
    putBytes: Math.max(0, ...steps.map((s) => s.putBytes(th))),
  };
}

/** What the threads the restore made from a main thread hold before their steps at `at` (RestoreThreadView born): each thread kind's part, read from `tid`, one of them. */
export function bornThreadState(at: ThreadRestorePoint, pid: number, tid: number): BornThread {
  const out: { -readonly [K in keyof BornThread]: BornThread[K] } = {};
  for (const k of THREAD_KINDS) {
    const read = k.born?.[at];
    if (read) Object.assign(out, read(pid, tid));
  }
  return out;
}

export type * from './types.js';
export type * from './space.js';
export type * from './resource-kind.js';
export type { Kind } from './kind.js';
export { installFd, openOursInTask } from './install-fd.js';
export { stateKey } from './types.js';

export type { BornThread, TaskRestorePoint, TaskStateKind, ThreadAnswers, ThreadKind, DumpThreadView, RestoreThreadView, ThreadRestorePoint, ThreadsToAsk } from './task/types.js';
export { readFown, withFown, fownOf, fownUidsAsSeen, restoreFown, NO_FOWN } from './files/fown.js';
export { socketNetNsId } from './files/socket-opts/net-ns.js';
