/**
 * Creating a name on a filesystem that belongs to another user namespace
 * (a tmpfs mounted inside a container's user namespace): the kernel makes
 * an inode, or a hard link, only for a caller whose fsuid and fsgid map
 * into the filesystem's user namespace, and says EOVERFLOW otherwise
 * (fsuidgid_has_mapping). criu-ts runs as uid 0 of the initial namespace,
 * which such a namespace usually does not map. `withFsIds` runs `fn` with
 * this thread's fsuid/fsgid set to ids that do map (the file's owner, as
 * the host sees it), with every capability we hold kept effective (a
 * non-zero fsuid would drop the filesystem ones), and puts all of it back
 * afterwards whatever `fn` does. setfsuid/setfsgid/capset as raw syscalls
 * act on the calling thread only; Node's synchronous fs calls run on it.
 */
import { sys, sysTry, addr } from './libc.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';

/** capget/capset header version: 64-bit sets in two u32 halves. */
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;
const EOVERFLOW = 75;

function capHeader(): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  h.writeInt32LE(0, 4); // this thread
  return h;
}

/** Two __user_cap_data_struct {effective, permitted, inheritable}, u32 each. */
function capGet(): Buffer {
  const d = Buffer.alloc(24);
  sys('capget', NR.capget, undefined, addr(capHeader()), addr(d));
  return d;
}

function capSet(d: Buffer): void {
  sys('capset', NR.capset, undefined, addr(capHeader()), addr(d));
}

export function withFsIds<T>(uid: number, gid: number, fn: () => T): T {
  const caps = capGet();
  const oldGid = sysTry(NR.setfsgid, gid);
  const oldUid = sysTry(NR.setfsuid, uid);
  try {
    const raised = Buffer.from(caps);
    // effective = permitted, both halves
    raised.writeUInt32LE(raised.readUInt32LE(4), 0);
    raised.writeUInt32LE(raised.readUInt32LE(16), 12);
    capSet(raised);
    return fn();
  } finally {
    sysTry(NR.setfsuid, oldUid);
    sysTry(NR.setfsgid, oldGid);
    capSet(caps);
  }
}

/** Did `e` (a SyscallError or a Node fs error) fail with EOVERFLOW? */
export function isEoverflow(e: unknown): boolean {
  if (e instanceof SyscallError) return e.errno === EOVERFLOW;
  const x = e as { code?: unknown; errno?: unknown } | null;
  return x !== null && typeof x === 'object' && (x.code === 'EOVERFLOW' || x.errno === EOVERFLOW || x.errno === -EOVERFLOW);
}

/**
 * `fn` as we are; if the filesystem refuses our ids (EOVERFLOW), once more
 * as `uid`/`gid` (ids the filesystem's user namespace maps). Returns the
 * fsuid the name was made with (the owner a fresh inode got).
 */
export function asMappedIfNeeded(uid: number, gid: number, fn: () => void): number {
  try {
    fn();
    return sysTry(NR.setfsuid, 0xffffffff); // -1 changes nothing and says the current fsuid
  } catch (e) {
    if (!isEoverflow(e) || uid === 0) throw e;
  }
  withFsIds(uid, gid, fn);
  return uid;
}
