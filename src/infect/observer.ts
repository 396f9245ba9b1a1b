/**
 * Who hears what a Tracee leaves in a dump target (its scratch area, its
 * self-cure frames, a memory tracker): the guardian of the running dump, if any. Kept apart
 * so that tracee.ts does not import guardian.ts (which drives Tracees).
 */
export interface TraceeObserver {
  scratch(pid: number, addr: bigint, size: number): void;
  frame(tid: number, slot: bigint): void;
  /** frame() of many threads, told at once (one message: a 1000-thread dump's arming sent 1,000) */
  frames(list: readonly { tid: number; slot: bigint }[]): void;
  /** run `fn`, what it reports sent at its end in one message */
  batch<T>(fn: () => T): T;
  unmapped(pid: number): void;
  /** a memory tracker (userfaultfd, kinds/memory/tracking.ts) a dump or pre-dump made or scanned in `pid` */
  tracker(pid: number, fd: number, ino: bigint): void;
  /** a memory tracker is about to be made in `pid`, which holds userfaultfds of these inodes already */
  trackerMaking(pid: number, before: readonly bigint[]): void;
}

let current: TraceeObserver | undefined;

export function setTraceeObserver(o: TraceeObserver | undefined): void {
  current = o;
}

export function traceeObserver(): TraceeObserver | undefined {
  return current;
}

/** Run `fn` with what it reports to the observer (if any) sent at its end, in one message. */
export function observedBatch<T>(fn: () => T): T {
  return current ? current.batch(fn) : fn();
}
