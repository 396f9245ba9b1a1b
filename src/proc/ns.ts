/**
 * /proc/PID/ns/TYPE: the link whose text ("net:[4026531840]") names the
 * namespace of that type a task is in (pid_for_children, time_for_children:
 * the one its next children are born in). Two tasks are in the same
 * namespace when the texts are equal. `self` and `thread-self` name
 * criu-ts's own (thread-self: this thread's, which a setns of this thread
 * alone may have moved).
 */
import { existsSync, readlinkSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { readProcLink } from './read.js';

export type NsHolder = number | 'self' | 'thread-self';

const holderPid = (who: NsHolder): number => (typeof who === 'number' ? who : process.pid);

/** The link's text; ENOTASK when it cannot be read (the task gone, not ours to look at, or no such kind of namespace here). */
export function readNsLink(who: NsHolder, type: string): string {
  const file = `/proc/${who}/ns/${type}`;
  try {
    return readProcLink(holderPid(who), file);
  } catch (e) {
    throw new CriuTsError('ENOTASK', `task ${holderPid(who)}: cannot read ${file}: ${(e as Error).message}`, { pid: holderPid(who) }, e);
  }
}

/** The link's text, or undefined when it cannot be read. */
export function nsLinkOf(who: NsHolder, type: string): string | undefined {
  try {
    return readNsLink(who, type);
  } catch {
    return undefined;
  }
}

/** Whether task `pid` is in this thread's namespace of `type`; undefined when either link cannot be read. */
export function inOwnNs(pid: number, type: string): boolean | undefined {
  const theirs = nsLinkOf(pid, type);
  const ours = nsLinkOf('thread-self', type);
  return theirs === undefined || ours === undefined ? undefined : theirs === ours;
}

/**
 * Why a task's ns link could not be read: this kernel has no namespace of
 * that kind (criu-ts's own link is missing too); the task is gone; criu-ts
 * may not look at it (another user namespace's init, an LSM: EACCES,
 * EPERM); the namespace its next children would get has no task yet
 * (pid_for_children of a task that unshared CLONE_NEWPID and has not
 * forked: the kernel shows no link); or something else.
 */
export type NsLinkMissing = 'no-such-kind' | 'gone' | 'denied' | 'not-entered' | 'other';

/** The link's text, or why there is none, with the error the kernel gave. */
export function readNsLinkOrWhy(pid: number, type: string): { link: string } | { why: NsLinkMissing; code: string | undefined; error: Error } {
  try {
    return { link: readlinkSync(`/proc/${pid}/ns/${type}`) };
  } catch (e) {
    const error = e as NodeJS.ErrnoException;
    const code = error.code;
    const why: NsLinkMissing =
      code === 'ENOENT' && !existsSync(`/proc/self/ns/${type}`) ? 'no-such-kind'
        : (code === 'ENOENT' || code === 'ESRCH') && !existsSync(`/proc/${pid}/ns`) ? 'gone'
          : code === 'EACCES' || code === 'EPERM' ? 'denied'
            : code === 'ENOENT' ? 'not-entered'
              : 'other';
    return { why, code, error };
  }
}

/**
 * The pid namespace a proc mount shows ("pid:[...]"): its pid 1's, read
 * through task `pid`'s root (the mount is at `mountpoint` in that task's
 * mount namespace); undefined when it cannot be read (no init there).
 */
export function procMountPidNs(pid: number, mountpoint: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/root${mountpoint === '/' ? '' : mountpoint}/1/ns/pid`);
  } catch {
    return undefined;
  }
}
