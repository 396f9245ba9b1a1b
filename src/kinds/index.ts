/**
 * The one registry of resource kinds. Dump asks each file kind in order
 * whether it recognises an fd; restore finds the kind by the entry's type.
 * Add a kind here and nowhere else.
 */
import type { FileKind, FdProbe, ResourceKind } from './types.js';
import type { NsKind } from '../images/index.js';
import type { FileEntry } from '../images/messages.js';
import { regFileKind } from './files/reg-file.js';
import { SPECIAL_FILE_KINDS } from './files/special-kinds.js';
import { PIPE_FILE_KINDS } from './files/pipe-kinds.js';
import { inetSocketKind } from './files/inet-socket/index.js';
import { NS_RESOURCE_KINDS } from './ns/index.js';
import { packetSocketKind } from './files/packet-socket/index.js';
import { netlinkSocketKind } from './files/netlink-socket/index.js';
import { cgroupKind } from './cgroup/index.js';
import { mntKind } from './ns/mnt/index.js';

export const FILE_KINDS: readonly FileKind[] = [...SPECIAL_FILE_KINDS, ...PIPE_FILE_KINDS, inetSocketKind, packetSocketKind, netlinkSocketKind, regFileKind];

export function fileKindFor(p: FdProbe): FileKind | undefined {
  return FILE_KINDS.find((k) => k.detect(p));
}

export function fileKindByType(type: FileEntry['type']): FileKind | undefined {
  return FILE_KINDS.find((k) => k.type === type);
}

/**
 * Every resource that is not an open file (namespaces, cgroups, SysV IPC,
 * ...), in the order the core calls them at each point (kinds/types.ts,
 * ResourceKind). Add a kind here and nowhere else.
 */
// The mount namespace comes last: the tree's mounts are made in the root
// task once it is in every other namespace of its own (a proc, mqueue,
// sysfs or cgroup mount shows the namespaces of the task that makes it).
export const RESOURCE_KINDS: readonly ResourceKind[] = [...NS_RESOURCE_KINDS, cgroupKind, mntKind];

/** The namespace types some resource kind saves and re-creates: a task in one of its own is not refused for it. */
export function handledNamespaces(): ReadonlySet<NsKind> {
  return new Set(RESOURCE_KINDS.flatMap((k) => k.namespaces ?? []));
}

export type * from './types.js';
export { installFd, openOursInTask } from './install-fd.js';
export { stateKey } from './types.js';

// What the core needs from the file kinds beyond the table: REG entries for
// paths it meets outside fds (mapped files, cwd, root, exe) and ghosts.
export { regEntryForPath, isMqueue } from './files/reg-file.js';
export { dumpUnlinked, materializeRemaps, removeGhosts, removeLinks, removeRemapFds, deadProcPids } from './files/ghost/index.js';
export type { MaterializedRemaps } from './files/ghost/index.js';
// The task-state kinds (kinds/task): their own registry, run by the core at each point of a task's dump and restore.
export {
  TASK_STATE_KINDS, taskStateSteps, restoreTaskState, askAllThreads, askThreads, dumpThreadCore, threadStateSteps, restoreFpu,
  restoreThreadSignals, restoreChildSubreaper, dumpCreds, credsPutBytes, credsSteps,
  SeccompCollector, restoreThreadSeccomp, seccompSharedByThreads,
} from './task/index.js';
export type { TaskRestorePoint, TaskStateKind, ThreadAnswers } from './task/index.js';
export { memfdFileForMapping, openMemfd } from './files/memfd.js';
export { lazyFileRanges } from './memory/lazy.js';
export { parentReads } from './memory/parent-reads.js';
export { checkRunId, clearStaleLocks, defaultLockMethod, holdsConnections, LOCK_METHOD, probeNftables, unlockNetwork } from './files/inet-socket/net-lock.js';
export { probeIptLegacy } from './files/inet-socket/net-lock-iptables.js';
export type { LockMethod } from './files/inet-socket/net-lock.js';
export { readFown, withFown, fownOf, fownUidsAsSeen, restoreFown, NO_FOWN } from './files/fown.js';
export { shmemPagesSaved } from './files/memfd-pages.js';
export { socketNetNsId } from './files/socket-opts/net-ns.js';
