/**
 * The user namespace (kernel: struct user_namespace): the uid and gid maps
 * that tie ids inside it to ids outside, its setgroups switch, and the ids
 * and capabilities of the tasks as seen through it. CRIU image
 * userns-<ns id>.img (userns_entry: uid_map, gid_map of uid_gid_extent
 * {first, lower_first, count}, as /proc/PID/uid_map lists them).
 *
 * Dump: when the tree's root is in a user namespace other than criu-ts's,
 * its maps are read from /proc/PID/{uid,gid}_map and /proc/PID/setgroups.
 * As CRIU does, every id the images hold is the one the tree sees: the
 * tasks' credentials (real, effective, saved, fs ids, supplementary
 * groups) as getresuid() would answer inside (an id without a mapping is
 * the overflow id), the login uid, and the owners other kinds record
 * (treeUid/treeGid, kept as CRIU's INVALID_ID when unmapped: SysV objects,
 * ghost files, memfds, unix socket files, terminals; the restore maps them
 * back outside where criu-ts chowns: hostUid/hostGid/hostOwner). Capabilities
 * are kept as they are: the kernel holds them relative to the task's own
 * user namespace. Every other namespace of the root that is not criu-ts's
 * must be owned by that user namespace (the restore creates them inside it).
 *
 * Restore: the root is cloned with CLONE_NEWUSER (with the other CLONE_NEW*
 * flags of its clone3, which the kernel creates owned by the new user
 * namespace), criu-ts writes the maps to /proc/ROOT/{setgroups,uid_map,
 * gid_map} from outside (the writer needs CAP_SETUID/CAP_SETGID over the
 * parent namespace, which only we have), and the root takes ids 0 inside
 * (so that what it creates has mapped owners), keeping every capability of
 * the new namespace; the namespace kinds after this one then unshare
 * theirs inside it. The tasks' credentials are set inside at the end
 * (kinds/task/creds.ts), with the ids as the images hold them. A setgroups
 * "deny" has no field in CRIU's image: criu-ts keeps it in a field of its
 * own (userns_entry 1000, which CRIU skips); with it, the supplementary
 * groups can never change inside, so the stub takes the tree's groups
 * before it clones the root, and the root inherits them.
 *
 * Limits (refused with one line): a task in a user namespace nested in the
 * tree's; a namespace of the root owned by another user namespace than the
 * root's; a task whose ids have no mapping inside; a tree with more than one task or thread in criu-ts's pid
 * namespace but a user namespace of its own (its children would need
 * clone3 set_tid, which takes CAP_CHECKPOINT_RESTORE over our pid
 * namespace, from inside); an unprivileged RPC caller at restore.
 */
import { statSync, writeFileSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { imageFile } from '../../images/index.js';
import { NR, PR, CLONE_NEWUSER, nsOwnerInode } from '../../sys/index.js';
import { nsLinkOf, readComm, setgroupsDenied, readSysctlInt } from '../../proc/index.js';
import type { CredsEntry, TaskCoreEntry, ThreadCoreEntry, UidGidExtent, UsernsEntry } from '../../images/messages.js';
import { stateKey, type DumpContext, type DumpTreeView, type RestoreContext, type RestoreTreeView } from '../types.js';
import type { ResourceKind } from '../resource-kind.js';
import { isRoot, rootHasOwnNamespace, rootNamespaceToCreate } from './common.js';
import { checkMap, inside, mapText, outside, readMap } from './user-maps.js';

/** CRIU's INVALID_ID: an id with no mapping in the tree's user namespace (file owners, ipc owners, loginuid). */
export const INVALID_ID = 0xffffffff;

interface Maps {
  uid: readonly UidGidExtent[];
  gid: readonly UidGidExtent[];
}

const DUMP = stateKey<{ rootPid: number; maps: Maps | undefined }>('user:dump');
/** mapsWritten: the root's pid here once its maps were written before its first exec (--restore-sibling). */
const RESTORE = stateKey<{ rootPid: number; entry: UsernsEntry | undefined; deny: boolean; mapsWritten?: number }>('user:restore');

/** The namespace types the root may have of its own; each must then be owned by its user namespace. */
const OWNED_TYPES = ['pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup', 'time'] as const;

function commOf(pid: number): string {
  try {
    return ` (${readComm(pid)})`;
  } catch {
    return '';
  }
}

/** /proc/PID/{uid,gid}_map: "inside outside count" per line. */
let overflow: { uid: number; gid: number } | undefined;
/** The ids the kernel shows for one without a mapping (kernel.overflowuid/overflowgid). */
function overflowIds(): { uid: number; gid: number } {
  const read = (f: string): number => readSysctlInt(`kernel/${f}`) ?? 65534;
  overflow ??= { uid: read('overflowuid'), gid: read('overflowgid') };
  return overflow;
}

function dumpMaps(ctx: DumpContext): Maps | undefined {
  return ctx.memo(DUMP, () => ({ rootPid: 0, maps: undefined })).maps;
}

/**
 * A uid as criu-ts reads it (stat, IPC_STAT, sock_diag) as the dumped tree
 * sees it: the same unless the tree has a user namespace of its own, where
 * an id without a mapping is INVALID_ID (as CRIU writes it).
 */
export function treeUid(ctx: DumpContext, uid: number): number {
  const m = dumpMaps(ctx);
  return m === undefined ? uid : inside(m.uid, uid) ?? INVALID_ID;
}

/**
 * The command prefix that runs a tool (tar) as root of the dumped tree's
 * user namespace, entered through task `pid`'s (ids it reads and writes are
 * then the tree's, as in CRIU's tmpfs tar); [] without one or unmapped root.
 */
export function asTreeRoot(ctx: DumpContext, pid: number): string[] {
  const m = dumpMaps(ctx);
  return m === undefined || outside(m.uid, 0) === undefined || outside(m.gid, 0) === undefined ? [] : nsenterUser(pid);
}

const nsenterUser = (pid: number): string[] => ['nsenter', `--user=/proc/${pid}/ns/user`, '--']; // as uid/gid 0 there

/** treeUid for a gid. */
export function treeGid(ctx: DumpContext, gid: number): number {
  const m = dumpMaps(ctx);
  return m === undefined ? gid : inside(m.gid, gid) ?? INVALID_ID;
}

function restoreEntry(ctx: RestoreContext): UsernsEntry | undefined {
  return ctx.state(RESTORE, () => ({ rootPid: 0, entry: undefined, deny: false })).entry;
}

/**
 * A uid of the images (as the tree saw it) as criu-ts must pass it from
 * outside (chown, IPC_SET, ...): the same unless the tree is restored in a
 * user namespace of its own; undefined when the id has no mapping there
 * (or was INVALID_ID at dump).
 */
export function hostUid(ctx: RestoreContext, uid: number): number | undefined {
  const e = restoreEntry(ctx);
  if (e === undefined) return uid;
  return uid === INVALID_ID ? undefined : outside(e.uid_map ?? [], uid);
}

/** hostUid for a gid. */
export function hostGid(ctx: RestoreContext, gid: number): number | undefined {
  const e = restoreEntry(ctx);
  if (e === undefined) return gid;
  return gid === INVALID_ID ? undefined : outside(e.gid_map ?? [], gid);
}

/**
 * The uid (criu-ts's view) of the root of the tree's new user namespace
 * (uid 0 inside), which owns what the kernel grants by owner there (an ipc
 * namespace's sysctls); undefined without one, or when 0 has no mapping.
 */
export function namespaceRootUid(ctx: RestoreContext): number | undefined {
  const e = restoreEntry(ctx);
  return e === undefined ? undefined : outside(e.uid_map ?? [], 0);
}

/** asTreeRoot at restore, into the new user namespace (a tmpfs it owns takes files only from ids it maps). */
export function asNamespaceRoot(ctx: RestoreContext, pid: number): string[] {
  const e = restoreEntry(ctx);
  return e === undefined || outside(e.uid_map ?? [], 0) === undefined || outside(e.gid_map ?? [], 0) === undefined ? [] : nsenterUser(pid);
}

/**
 * An owner of the images (uid and gid as the tree saw them) as criu-ts
 * passes it from outside (chown); refused with one line naming `what` when
 * one of them has no mapping in the tree's new user namespace.
 */
export function hostOwner(ctx: RestoreContext, uid: number, gid: number, what: string): { uid: number; gid: number } {
  const u = hostUid(ctx, uid);
  const g = hostGid(ctx, gid);
  if (u === undefined || g === undefined) {
    throw new CriuTsError('EIMAGE', `${what}: its owner ${uid}:${gid} has no mapping in the tree's user namespace`, { uid, gid });
  }
  return { uid: u, gid: g };
}

function refuse(pid: number, what: string, data: Record<string, unknown> = {}): never {
  throw new CriuTsError('EUNSUPPORTED', `task ${pid}${commOf(pid)} ${what}`, { pid, namespace: 'user', ...data });
}

function dumpTree(tree: DumpTreeView, ctx: DumpContext): void {
  const own = rootHasOwnNamespace(tree, 'user');
  const root = tree.rootPid;
  if (!own) {
    Object.assign(ctx.memo(DUMP, () => ({ rootPid: 0, maps: undefined })), { rootPid: root });
    return;
  }
  // The restore makes every namespace of the root inside the new user
  // namespace: one owned by another (made before the user namespace, or
  // by another one) would come back with another owner.
  const userIno = statSync(`/proc/${root}/ns/user`).ino;
  for (const type of OWNED_TYPES) {
    const theirs = nsLinkOf(root, type);
    if (theirs === undefined || theirs === nsLinkOf(process.pid, type)) continue;
    const owner = nsOwnerInode(`/proc/${root}/ns/${type}`);
    if (owner !== userIno) {
      refuse(root, `has a ${type} namespace (${theirs}) owned by another user namespace than its own (user:[${userIno}]): criu-ts re-creates the tree's namespaces inside its user namespace`, { type });
    }
  }
  // clone3 set_tid in our pid namespace takes CAP_CHECKPOINT_RESTORE over
  // it, which no task inside another user namespace has.
  if (nsLinkOf(root, 'pid') === nsLinkOf(process.pid, 'pid')) {
    const many = tree.tasks.length > 1 || tree.tasks.some((t) => t.tids.length > 1);
    if (many) {
      refuse(root, `is in a user namespace of its own but in criu-ts's pid namespace, with ${tree.tasks.length} tasks: their children and threads could not get their pids back from inside (clone3 set_tid needs CAP_CHECKPOINT_RESTORE in criu-ts's user namespace); a tree with a pid namespace of its own, or a single task, is supported`);
    }
  }
  const maps: Maps = { uid: readMap(root, 'uid_map'), gid: readMap(root, 'gid_map') };
  Object.assign(ctx.memo(DUMP, () => ({ rootPid: 0, maps: undefined })), { rootPid: root, maps });
}


/**
 * Credentials as criu-ts reads them (/proc status: ids outside) made the
 * ones the task sees inside. An id without a mapping (the task sees the
 * overflow id) could not be given back from inside: refused.
 */
function credsInside(pid: number, tid: number, c: CredsEntry, maps: Maps): void {
  const ov = overflowIds();
  const map = (m: readonly UidGidExtent[], id: number, what: string, shown: number): number => {
    const v = inside(m, id);
    if (v === undefined) {
      refuse(pid, `thread ${tid} has ${what} ${id}, which has no mapping in its user namespace (it sees ${shown}): it could not be given back from inside`, { tid, id });
    }
    return v;
  };
  const u = (id: number): number => map(maps.uid, id, 'uid', ov.uid);
  const g = (id: number): number => map(maps.gid, id, 'gid', ov.gid);
  c.uid = u(c.uid); c.euid = u(c.euid); c.suid = u(c.suid); c.fsuid = u(c.fsuid);
  c.gid = g(c.gid); c.egid = g(c.egid); c.sgid = g(c.sgid); c.fsgid = g(c.fsgid);
  if (c.groups) c.groups = c.groups.map(g);
}

/** What dumpTask changes in a task's cores: its ids (creds, loginuid) as seen inside. */
function viewInside(pid: number, tid: number, maps: Maps, tc: TaskCoreEntry | undefined, thc: ThreadCoreEntry | undefined): void {
  if (thc?.creds) credsInside(pid, tid, thc.creds, maps);
  if (tc?.loginuid !== undefined) tc.loginuid = inside(maps.uid, tc.loginuid) ?? INVALID_ID;
}

function dumpTask(task: Parameters<NonNullable<ResourceKind['dumpTask']>>[0], ctx: DumpContext): void {
  const st = ctx.memo(DUMP, () => ({ rootPid: 0, maps: undefined }));
  const maps = st.maps;
  if (maps === undefined) return;
  task.cores.forEach(({ tid, core }, i) => {
    viewInside(task.pid, tid, maps, i === 0 ? core.tc : undefined, core.thread_core);
  });
  if (task.pid !== st.rootPid) return;
  const id = task.ids.user_ns_id;
  if (id === undefined) throw new CriuTsError('EDUMP', `task ${task.pid}: no user namespace id`, { pid: task.pid });
  const entry: UsernsEntry = { uid_map: [...maps.uid], gid_map: [...maps.gid] };
  if (setgroupsDenied(task.pid)) entry.setgroups_deny = true;
  ctx.saveImage('USERNS', id, [entry]);
}

/** Extents the kernel would refuse, found before anything is created. */
function prepareRestore(tree: RestoreTreeView, ctx: RestoreContext): void {
  const id = rootNamespaceToCreate(tree, 'user');
  if (id === undefined) {
    Object.assign(ctx.state(RESTORE, () => ({ rootPid: 0, entry: undefined, deny: false })), { rootPid: tree.rootPid });
    return;
  }
  // Making a user namespace with maps of our choosing takes CAP_SETUID/CAP_SETGID here (docs/security.md).
  if (ctx.opts.unprivileged) {
    throw new CriuTsError('EPERM', `not restored for an unprivileged caller: task ${tree.rootPid} would be in a user namespace of its own`, { pid: tree.rootPid, errno: 1 });
  }
  const file = imageFile('USERNS', id);
  const entry = ctx.image('USERNS', id)?.entries[0];
  if (entry === undefined) throw new CriuTsError('ENOIMAGE', `${file}: missing (the root's user namespace, ns id ${id})`, { file });
  checkMap(file, 'uid_map', entry.uid_map ?? []);
  checkMap(file, 'gid_map', entry.gid_map ?? []);
  const root = tree.tasks.find((t) => t.pid === tree.rootPid);
  const ownPid = root?.ids?.pid_ns_id !== undefined && root.ids.pid_ns_id !== tree.rootIds?.pid_ns_id;
  // Helpers (a gone session or group leader) are made outside, before the root: only the tree's own tasks count.
  const inside = tree.tasks.filter((t) => !t.helper);
  if (!ownPid && (inside.length > 1 || inside.some((t) => t.threadCores.length > 1))) {
    throw new CriuTsError('EUNSUPPORTED', `task ${tree.rootPid} was dumped in a user namespace of its own but in the dumper's pid namespace, with more than one task or thread: their pids cannot be given back from inside (clone3 set_tid needs CAP_CHECKPOINT_RESTORE in criu-ts's user namespace)`, { pid: tree.rootPid });
  }
  const deny = entry.setgroups_deny === true;
  if (deny) {
    // With setgroups denied nobody inside can change the groups: the root inherits them from the stub.
    for (const g of root?.core?.thread_core?.creds?.groups ?? []) {
      if (outside(entry.gid_map ?? [], g) === undefined) {
        throw new CriuTsError('EIMAGE', `${file}: task ${tree.rootPid}'s supplementary group ${g} has no mapping, and setgroups is denied in its user namespace`, { file, gid: g });
      }
    }
  }
  if (ctx.opts.restoreSibling) siblingCheck(file, tree.rootPid, entry, root?.core?.thread_core?.creds?.groups ?? []);
  Object.assign(ctx.state(RESTORE, () => ({ rootPid: 0, entry: undefined, deny: false })), { rootPid: tree.rootPid, entry, deny });
}

/**
 * --restore-sibling: the root is born from criu-ts's own process and execs
 * the stub at once (restore/stub.ts cloneSiblingTop). Its maps are written
 * before that exec (siblingBeforeExec) and it takes uid and gid 0 inside,
 * which keeps its capabilities there across the exec: so both must have a
 * mapping. It is born with criu-ts's supplementary groups, which nobody
 * inside can change when setgroups is denied.
 */
function siblingCheck(file: string, pid: number, entry: UsernsEntry, groups: readonly number[]): void {
  if (outside(entry.uid_map ?? [], 0) === undefined || outside(entry.gid_map ?? [], 0) === undefined) {
    throw new CriuTsError('EUNSUPPORTED', `${file}: task ${pid}'s user namespace maps no root (uid or gid 0): not restored with --restore-sibling (its first task, born from criu-ts, would keep no capability there); restore without --restore-sibling`, { pid, file });
  }
  if (entry.setgroups_deny !== true) return;
  const want = groups.map((g) => outside(entry.gid_map ?? [], g) ?? INVALID_ID).sort((a, b) => a - b);
  const ours = [...(process.getgroups?.() ?? [])].sort((a, b) => a - b);
  if (want.join(',') !== ours.join(',')) {
    throw new CriuTsError('EUNSUPPORTED', `${file}: task ${pid}'s supplementary groups cannot be given with --restore-sibling while setgroups is denied in its user namespace (it is born with criu-ts's); restore without --restore-sibling`, { pid, file });
  }
}

/** The id maps of a new user namespace (setgroups first: "deny" is taken only while no gid map is written). */
function writeMaps(pid: number, task: number, e: UsernsEntry, deny: boolean): void {
  if (deny) writeProc(pid, task, 'setgroups', 'deny');
  if ((e.uid_map ?? []).length > 0) writeProc(pid, task, 'uid_map', mapText(e.uid_map ?? []));
  if ((e.gid_map ?? []).length > 0) writeProc(pid, task, 'gid_map', mapText(e.gid_map ?? []));
}

/** One write, as the kernel wants a map (it takes the file only once). */
function writeProc(pid: number, task: number, file: string, text: string): void {
  try {
    writeFileSync(`/proc/${pid}/${file}`, text);
  } catch (e) {
    throw new CriuTsError('ERESTORE', `task ${task}: cannot write /proc/${pid}/${file} of its new user namespace: ${(e as Error).message}`, { pid: task, file }, e);
  }
}


export const userNsKind: ResourceKind = {
  name: 'user-ns',
  namespaces: ['user'],
  dumpTree,
  dumpTask,
  prepareRestore,

  verifyView(pid, view): void {
    if (nsLinkOf(pid, 'user') === nsLinkOf(process.pid, 'user')) return;
    const maps: Maps = { uid: readMap(pid, 'uid_map'), gid: readMap(pid, 'gid_map') };
    viewInside(pid, pid, maps, view.tc, undefined);
    for (const thc of view.threadCores) viewInside(pid, pid, maps, undefined, thc);
  },

  cloneFlags(task, parentIds): bigint {
    const ns = task.ids?.user_ns_id;
    const above = parentIds?.user_ns_id;
    return ns !== undefined && above !== undefined && ns !== above ? BigInt(CLONE_NEWUSER) : 0n;
  },

  beforeClone(parent, task, ctx): void {
    const st = ctx.state(RESTORE, () => ({ rootPid: 0, entry: undefined, deny: false }));
    if (!st.deny || st.entry === undefined || !isRoot(task, st.rootPid)) return;
    const groups = (task.core?.thread_core?.creds?.groups ?? []).map((g) => outside(st.entry?.gid_map ?? [], g) ?? INVALID_ID);
    const buf = Buffer.alloc(Math.max(4, groups.length * 4));
    groups.forEach((g, i) => buf.writeUInt32LE(g, i * 4));
    parent.syscall('setgroups (the groups the new user namespace keeps)', NR.setgroups, groups.length, parent.putBytes(buf));
  },

  siblingBeforeExec(pid, task, ctx): boolean {
    const st = ctx.state(RESTORE, () => ({ rootPid: 0, entry: undefined, deny: false }));
    const e = st.entry;
    if (e === undefined || !isRoot(task, st.rootPid)) return false;
    writeMaps(pid, task.pid, e, st.deny);
    st.mapsWritten = pid;
    // siblingCheck made sure root has a mapping.
    return true;
  },

  restoreCreated(t, task, ctx): void {
    const st = ctx.state(RESTORE, () => ({ rootPid: 0, entry: undefined, deny: false }));
    const e = st.entry;
    if (e === undefined || !isRoot(task, st.rootPid)) return;
    // Born from criu-ts (--restore-sibling), it got its maps and took root inside before its exec.
    if (st.mapsWritten === t.pid) {
      t.syscall('prctl(SET_DUMPABLE)', NR.prctl, PR.SET_DUMPABLE, 1);
      return;
    }
    writeMaps(t.pid, task.pid, e, st.deny);
    // Root inside, as CRIU does: files, sockets and namespaces the tree's
    // tasks create from now on have owners the namespace can name. The
    // capabilities of the new namespace stay (uid 0 keeps them), and the
    // tasks' own ids come back last (kinds/task/creds.ts).
    if (outside(e.uid_map ?? [], 0) !== undefined && outside(e.gid_map ?? [], 0) !== undefined) {
      t.syscall('setresgid(0)', NR.setresgid, 0, 0, 0);
      t.syscall('setresuid(0)', NR.setresuid, 0, 0, 0);
    }
    // An id change clears the dumpable flag, and /proc/self would then be the host root's, unreachable inside.
    t.syscall('prctl(SET_DUMPABLE)', NR.prctl, PR.SET_DUMPABLE, 1);
  },
};
