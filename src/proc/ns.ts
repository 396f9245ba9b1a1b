/**
 * /proc/PID/ns/TYPE: the link whose text ("net:[4026531840]") names the
 * namespace of that type a task is in (pid_for_children, time_for_children:
 * the one its next children are born in). Two tasks are in the same
 * namespace when the texts are equal. `self` and `thread-self` name
 * criu-ts's own (thread-self: this thread's, which a setns of this thread
 * alone may have moved).
 */
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
