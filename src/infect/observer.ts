/**
 * Who hears what a Tracee leaves in a dump target (its scratch area, its
 * self-cure frames): the guardian of the running dump, if any. Kept apart
 * so that tracee.ts does not import guardian.ts (which drives Tracees).
 */
export interface TraceeObserver {
  scratch(pid: number, addr: bigint, size: number): void;
  frame(tid: number, slot: bigint): void;
  unmapped(pid: number): void;
}

let current: TraceeObserver | undefined;

export function setTraceeObserver(o: TraceeObserver | undefined): void {
  current = o;
}

export function traceeObserver(): TraceeObserver | undefined {
  return current;
}
