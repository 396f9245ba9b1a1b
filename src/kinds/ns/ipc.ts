/**
 * The ipc namespace (kernel: struct ipc_namespace): its SysV shared memory
 * segments (with contents), semaphore sets (with values), message queues
 * (with their messages) and its sysctls. CRIU images ipcns-var-<ns>.img,
 * ipcns-shm-<ns>.img (+ pagemap-shmem-<shmid>.img), ipcns-sem-<ns>.img,
 * ipcns-msg-<ns>.img.
 *
 * Dump: when the tree's root is in an ipc namespace other than criu-ts's,
 * our thread steps into it (setns) and reads everything without changing
 * it (ipc-dump.ts, ipc-sysctl.ts). The attachments of segments in the
 * tasks' memory are VMAs (VMA_AREA_SYSVIPC, shmid = the segment's id),
 * recorded by the memory dump. Restore: the root task, right after its
 * clone3 and before its children, runs an injected unshare(CLONE_NEWIPC)
 * (or, with --join-ns ipc, enters the given namespace: join.ts);
 * our thread steps into the namespace and re-creates every object with
 * its id, then the sysctls (ipc-restore.ts); the memory restore attaches
 * the segments with shmat at their addresses. A segment removed
 * (IPC_RMID) while still attached is removed again once every task has
 * attached it.
 *
 * Limits: nested ipc namespaces inside the tree are refused; hugetlb
 * segments are refused; semaphore undo lists (SEM_UNDO adjustments) are
 * not saved; POSIX message queues (the namespace's mqueue filesystem)
 * are saved with their messages in criu-ts's field of ipc_var_entry
 * (ipc-mqueue.ts), which CRIU does not restore; a SysV
 * segment attached by a task in criu-ts's own ipc namespace is refused by
 * the memory dump (it is not the tree's to take along).
 */
import { CriuTsError } from '../../errors.js';
import { NR, CLONE_NEWIPC, SHM_DEST, inNamespacesOf, ipcRemove } from '../../sys/index.js';
import { stateKey } from '../types.js';
import type { ResourceKind } from '../resource-kind.js';
import { isRoot, rootNamespaceDump, rootNamespaceToCreate } from './common.js';
import { closeJoinFd, joinInTask, openJoinNs } from './join.js';
import { readIpcVar } from './ipc-sysctl.js';
import { readIpcObjects } from './ipc-dump.js';
import { readNamespaceQueues } from './ipc-mqueue.js';
import { treeGid, treeUid } from './user.js';
import { loadIpcImages, restoreIpcObjects, type IpcImages } from './ipc-restore.js';
import { logger } from '../../log.js';

const log = logger('ipc');

const RESTORE = stateKey<{ rootPid: number; images: IpcImages | undefined; created: boolean; joinFd?: number | undefined }>('ipc:restore');

export const ipcKind: ResourceKind = {
  name: 'ipc',
  namespaces: ['ipc'], joins: ['ipc'],

  ...rootNamespaceDump('ipc', (task, id, ctx) => {
    const who = `task ${task.pid}'s ipc namespace`;
    const { v, objs } = inNamespacesOf(task.pid, ['ipc'], () => ({ v: readIpcVar(), objs: readIpcObjects(ctx, who) }));
    const queues = readNamespaceQueues(task.pid, who, (uid, gid) => ({ uid: treeUid(ctx, uid), gid: treeGid(ctx, gid) }));
    // Written only when there are queues: images of a namespace without any stay as CRIU's.
    if (queues.length > 0) v.mqueues = queues;
    ctx.saveImage('IPC_VAR', id, [v]);
    ctx.saveImage('IPCNS_SHM', id, objs.shm);
    for (const p of objs.shmPages) ctx.saveImage('SHMEM_PAGEMAP', p.id, [{ pages_id: p.pagesId }, ...p.entries]);
    ctx.saveImage('IPCNS_SEM', id, objs.sem.map((s) => s.entry), objs.sem.map((s) => s.values));
    ctx.saveImage('IPCNS_MSG', id, objs.msg.map((m) => m.entry), objs.msg.map((m) => m.payload));
    log.info(`ipc namespace ${id}: ${objs.shm.length} shm segment(s), ${objs.sem.length} semaphore set(s), ${objs.msg.length} SysV message queue(s), ${queues.length} POSIX message queue(s)`);
  }),

  prepareRestore(tree, ctx) {
    const id = rootNamespaceToCreate(tree, 'ipc');
    const images = id === undefined ? undefined : loadIpcImages(ctx, id);
    ctx.state(RESTORE, () => ({ rootPid: tree.rootPid, images, created: false, joinFd: openJoinNs(ctx, 'ipc') }));
  },

  restoreCreated(t, task, ctx) {
    const st = ctx.state(RESTORE, () => ({ rootPid: 0, images: undefined, created: false }));
    if (!isRoot(task, st.rootPid)) return;
    // --join-ns ipc: into the given namespace, where the dumped objects are made as in a new one (CRIU does the same).
    if (st.joinFd !== undefined) joinInTask(t, ctx, 'ipc', st.joinFd);
    if (st.images === undefined) return;
    if (st.joinFd === undefined) t.syscall('unshare(CLONE_NEWIPC)', NR.unshare, CLONE_NEWIPC);
    const images = st.images;
    inNamespacesOf(t.pid, ['ipc'], () => restoreIpcObjects(images, ctx));
    st.created = true;
  },

  finishRestore(ctx, failed) {
    const st = ctx.state(RESTORE, () => ({ rootPid: 0, images: undefined, created: false }));
    closeJoinFd(st);
    // After a failure the namespace goes with its last task: nothing to undo.
    if (failed || !st.created || st.images === undefined) return;
    // Segments dumped as removed but still attached: every attachment is back, remove them again.
    const dest = st.images.shm.filter((s) => (s.entry.desc.mode & SHM_DEST) !== 0);
    if (dest.length === 0) return;
    inNamespacesOf(st.rootPid, ['ipc'], () => {
      for (const s of dest) ipcRemove('shm', s.entry.desc.id);
    });
  },
};
