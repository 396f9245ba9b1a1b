/**
 * Namespaces of the dumped tree, as far as criu-ts handles them today: it
 * records which namespaces each task uses (ids-*.img, inventory root_ids)
 * and refuses a tree that lives in namespaces other than criu-ts's own,
 * because restoring such a task into our namespaces would silently change
 * what it sees (another root, other pids, another network).
 *
 * The ns ids follow CRIU: criu-ts's own namespaces are numbered first, in
 * CRIU's order (pid, net, ipc, uts, time, mnt, user, cgroup), and
 * inventory.root_ids holds criu-ts's own ids, so a task whose ids differ
 * from root_ids was in a namespace of its own.
 */
import { CriuTsError } from '../errors.js';
import { listChildren, parseStatus, readComm, readNsLinkOrWhy } from '../proc/index.js';
import { NS_KINDS, type NsKind } from '../images/index.js';


/** /proc/PID/ns links compared with ours: every kind, and what the task's next children get. */
const CHECKED_LINKS: readonly string[] = [...NS_KINDS, 'pid_for_children', 'time_for_children'];

/** "pid:[4026531836]", or undefined when the kernel lacks that namespace kind. */
function nsLink(pid: number, name: string): string | undefined {
  const r = readNsLinkOrWhy(pid, name);
  if ('link' in r) return r.link;
  switch (r.why) {
    case 'no-such-kind':
      return undefined;
    case 'gone':
      throw new CriuTsError('ENOTASK', `task ${pid} is gone`, { pid }, r.error);
    case 'denied':
      // Another user namespace's init, an LSM's refusal: it cannot be seized either. CRIU answers ESRCH there too.
      throw new CriuTsError('ENOTASK', `task ${pid}${commOf(pid)} cannot be dumped: criu-ts may not inspect it: readlink /proc/${pid}/ns/${name}: ${r.code}`, { pid }, r.error);
    case 'not-entered':
      return `${name.replace('_for_children', '')}:[new, not yet entered]`;
    default:
      throw new CriuTsError('EDUMP', `task ${pid}: cannot read /proc/${pid}/ns/${name}: ${r.error.message}`, { pid }, r.error);
  }
}

function commOf(pid: number): string {
  try {
    return ` (${readComm(pid)})`;
  } catch {
    return '';
  }
}

/**
 * Refuse a task that uses a namespace other than criu-ts's own, or whose
 * future children would get one (after unshare(CLONE_NEWPID|CLONE_NEWTIME)),
 * unless a resource kind saves and re-creates that type (`handled`; that
 * kind then refuses what it cannot do, e.g. nesting). One line names the
 * task, the namespace and both inodes.
 */
export function refuseForeignNamespaces(pid: number, handled: ReadonlySet<NsKind>): void {
  for (const name of CHECKED_LINKS) {
    const base = name.replace('_for_children', '');
    const isHandled = handled.has(base as NsKind);
    // A handled type's namespace is the kind's business; but children
    // born in another one than the task's own would be a nested namespace,
    // which no kind re-creates: refused here, before anything is seized.
    if (isHandled && name === base) continue;
    const ours = nsLink(isHandled ? pid : process.pid, isHandled ? base : name);
    if (ours === undefined) continue;
    const theirs = nsLink(pid, name);
    if (theirs === undefined || theirs === ours) continue;
    if (isHandled && base === 'pid' && initsChildNs(pid, theirs)) continue;
    const what = name.endsWith('_for_children')
      ? `would start its children in another ${base} namespace (${theirs})`
      : `is in its own ${name} namespace (${theirs}; criu-ts is in ${ours})`;
    throw new CriuTsError(
      'EUNSUPPORTED',
      `task ${pid}${commOf(pid)} ${what}: ${isHandled ? `nested ${base} namespaces are not supported` : 'criu-ts cannot checkpoint namespaces yet'}`,
      { pid, namespace: name, task: theirs, ours },
    );
  }
}

/**
 * `unshare -fp` left behind: a task whose next children go to the pid
 * namespace (`link`) one of its children is the init (pid 1) of. That
 * child is a nested namespace the pid kind saves, and the restore puts the
 * parent's pid_for_children back in it (ids-PID.img
 * pid_for_children_ns_id).
 */
function initsChildNs(pid: number, link: string): boolean {
  let kids: number[];
  try {
    kids = listChildren(pid);
  } catch {
    return false;
  }
  return kids.some((c) => {
    try {
      const r = readNsLinkOrWhy(c, 'pid');
      return 'link' in r && r.link === link && parseStatus(c).nsPid.at(-1) === 1;
    } catch {
      return false;
    }
  });
}

/** Whether task `pid` lives in a `type` namespace other than criu-ts's own. */
export function hasOwnNamespace(pid: number, type: NsKind): boolean {
  const ours = nsLink(process.pid, type);
  const theirs = nsLink(pid, type);
  return ours !== undefined && theirs !== undefined && ours !== theirs;
}
