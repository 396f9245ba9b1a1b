/**
 * Making room inside criu-ts's own process at a few chosen moments of a
 * big restore, for its peak RSS (issue 9: under 64 MiB at any size;
 * docs/performance.md "Peak RSS, ninth pass"): a full garbage collection
 * of V8's heap, and the node binary's code pages dropped once more.
 *
 * Why the GC: the CLI runs with 2 MiB semi-spaces, so whatever outlives
 * two scavenges is promoted to the old generation, and a run ends before
 * V8's first full GC of its own. A restore of 1000 threads or 10,000 fds
 * promotes 3-4 MiB of garbage per phase (the threads' steps, the fd
 * table), each phase into fresh old-space pages. A full GC between the
 * phases frees that space; the next phase promotes into it instead of
 * growing the heap.
 *
 * Why the code pages: cli/trim-pages.ts drops the binary's pages Node's
 * start used, before the command; the code that reads, checks and decodes
 * the images and creates the tree (the wasm compiler of vmh256, OpenSSL's
 * hashes, the decoders' builtins) pages 14-16 MiB of it back in, most of
 * which the rest of a restore never runs again. Dropped again before the
 * task bodies, the pages the bodies need come back by minor faults.
 *
 * Only where the process asked for it (the CLI and swrk: allowHeapTrims):
 * a program using the library keeps its own heap's timing and pages. And
 * only once the heap holds more than a small run ever does, and has grown
 * since the last time: small dumps and restores, whose peak is Node's
 * start anyway, never pay for it.
 */
import { nodeV8 } from './builtins.js';
import { runInNewContext } from 'node:vm';

/**
 * V8 heap in use below which nothing is done: before its task bodies a
 * 1 MiB restore uses 9-10 MiB, 100 processes 12.5-13.5, 1000 threads
 * 16-17.5 (of which 15 live), 10,000 fds 19.
 */
const MIN_USED = 14 << 20;
/** Growth in use since the last time below which another GC is not worth its 15-25 ms. */
const MIN_GROWTH = 4 << 20;

/** undefined: not allowed (library use); else what drops the binary's code pages. */
let dropCodePages: (() => void) | undefined;
let collect: (() => void) | null | undefined;
let usedAfterLast = 0;

/** The CLI's commands and swrk: this process is criu-ts's own, and its peak RSS is what counts. */
export function allowHeapTrims(dropCode: () => void): void {
  dropCodePages = dropCode;
}

/**
 * Node's gc(), which only a context made while --expose-gc is set has:
 * such a context is made once, then the flag goes back off (no later
 * context gets it). null where this V8 gives none.
 */
function gcFunction(): (() => void) | null {
  if (collect !== undefined) return collect;
  try {
    nodeV8().setFlagsFromString('--expose-gc');
    const f: unknown = runInNewContext('gc');
    collect = typeof f === 'function' ? (f as () => void) : null;
  } catch {
    collect = null;
  } finally {
    nodeV8().setFlagsFromString('--no-expose-gc');
  }
  return collect;
}

/**
 * If allowed, the heap in use is past `minUsed` (MIN_USED unless said) and
 * it grew by MIN_GROWTH since the last time: a full GC now, and with
 * `code` the binary's code pages dropped too. Returns the heap in use
 * before and after (MiB), or undefined when nothing was done.
 */
export function trimIfGrown(code = false, minUsed = MIN_USED): { before: number; after: number } | undefined {
  if (dropCodePages === undefined) return undefined;
  const used = process.memoryUsage().heapUsed;
  if (used < minUsed || used - usedAfterLast < MIN_GROWTH) return undefined;
  const gc = gcFunction();
  if (gc !== null) gc();
  if (code) dropCodePages();
  usedAfterLast = process.memoryUsage().heapUsed;
  return { before: used / 1048576, after: usedAfterLast / 1048576 };
}
