/**
 * Images that kinds fill next to files.img during a dump: queued bytes of
 * pipes (pipes-data.img), FIFOs (fifo-data.img) and sockets (sk-queues.img),
 * each an entry followed by its raw payload.
 *
 * The dump core gives kinds no way to write images of their own yet, so the
 * public dump() runs the dump inside `withDumpExtras`, which scopes one
 * collector to that dump (AsyncLocalStorage: two dumps in one process never
 * mix) and writes the images once the dump succeeded. When the core grows a
 * context hook for this, `emitExtra` is the only place to switch over.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { join } from 'node:path';
import { CriuTsError } from '../../errors.js';
import { writeImage } from '../../images/index.js';

export type ExtraImage = 'PIPES_DATA' | 'FIFO_DATA' | 'SK_QUEUES' | 'MEMFD_INODE' | 'TTY_INFO' | 'FILE_LOCKS' | 'REMAP_FPATH';

const FILE_OF: Record<ExtraImage, string> = {
  PIPES_DATA: 'pipes-data.img',
  FIFO_DATA: 'fifo-data.img',
  SK_QUEUES: 'sk-queues.img',
  MEMFD_INODE: 'memfd.img',
  TTY_INFO: 'tty-info.img',
  FILE_LOCKS: 'filelocks.img',
  REMAP_FPATH: 'remap-fpath.img',
};

interface Collected {
  entries: Record<string, unknown>[];
  payloads: Buffer[];
}

type Collector = Map<ExtraImage, Collected> & { memo?: Map<string, unknown> };

const current = new AsyncLocalStorage<Collector>();

/**
 * A value computed once per dump (e.g. which sockets the dumped tasks hold:
 * they are frozen, so it cannot change meanwhile); outside a dump, every call computes.
 */
export function dumpMemo<T>(key: string, make: () => T): T {
  const c = current.getStore();
  if (!c) return make();
  c.memo ??= new Map();
  if (c.memo.has(key)) return c.memo.get(key) as T;
  const v = make();
  c.memo.set(key, v);
  return v;
}

/**
 * The images dir of the running dump and steps to run once every other
 * image is written: for images whose name depends on the whole dump (a
 * memfd's pages-N.img takes the next free N after the core's).
 */
export interface DumpScope {
  dir: string;
  atEnd: ((dir: string) => void)[];
  /**
   * Steps run once the dump is over, whether it succeeded or not:
   * `tasksLive` tells whether the dumped tasks go on running (the dump
   * failed, or --leave-running/--leave-stopped: then these run first, before
   * the images are written) or were killed (then after atEnd).
   */
  atExit: ((tasksLive: boolean) => void)[];
  /** --tcp-established: the core does not hand it to kinds (DumpFilesContext.opts) yet */
  tcpEstablished: boolean;
}

export interface DumpScopeOptions {
  tcpEstablished?: boolean;
  /** --leave-running or --leave-stopped: the tasks live on after a successful dump */
  leaveTasks?: boolean;
}

const scope = new AsyncLocalStorage<DumpScope>();

/** The scope of the running dump, or undefined outside one. */
export function dumpScope(): DumpScope | undefined {
  return scope.getStore();
}

/** Queue one entry (and its payload) for an extra image of the running dump. */
export function emitExtra(image: ExtraImage, entry: object, payload: Buffer): void {
  const c = current.getStore();
  if (!c) {
    throw new CriuTsError('EINTERNAL', `no dump in progress to take a ${FILE_OF[image]} entry`, { image });
  }
  let slot = c.get(image);
  if (!slot) {
    slot = { entries: [], payloads: [] };
    c.set(image, slot);
  }
  slot.entries.push(entry as Record<string, unknown>);
  slot.payloads.push(payload);
}

/** Whether the entry of `image` keyed by `field === value` was already emitted in this dump. */
export function extraEmitted(image: ExtraImage, field: string, value: unknown): boolean {
  return current.getStore()?.get(image)?.entries.some((e) => e[field] === value) ?? false;
}

/** Run a dump with a collector; on success write every extra image into `dir`. */
export async function withDumpExtras<T>(dir: string, run: () => Promise<T>, opts: DumpScopeOptions = {}): Promise<T> {
  const c: Collector = new Map();
  const sc: DumpScope = { dir, atEnd: [], atExit: [], tcpEstablished: opts.tcpEstablished ?? false };
  let exited = false;
  const exit = (tasksLive: boolean): void => {
    if (exited) return;
    exited = true;
    for (const step of sc.atExit) step(tasksLive);
  };
  let r: T;
  try {
    r = await current.run(c, () => scope.run(sc, run));
  } catch (e) {
    // The core resumed the tree.
    exit(true);
    throw e;
  }
  // Tasks that run on get back what the dump borrowed before we spend time writing images.
  if (opts.leaveTasks ?? false) exit(true);
  try {
    for (const [image, slot] of c) writeImage(join(dir, FILE_OF[image]), image, slot.entries, slot.payloads);
    for (const step of sc.atEnd) step(dir);
    return r;
  } finally {
    exit(opts.leaveTasks ?? false);
  }
}
