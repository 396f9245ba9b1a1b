/**
 * The lazy-pages daemon's background push from local pages images
 * (lazy-pages.ts): each chunk read and checked by us (lazy-checked-pages.ts)
 * into a buffer of its own, then copied into the task by UFFDIO_COPY on
 * one of koffi's worker threads, while we read and check the next chunk
 * and serve faults. Done one after the other on one thread, the read and
 * check of a GiB (about 0.2 s of CPU) and its copy into the task (about
 * 0.25 s: the pages' allocation and the copy) added up; on two threads
 * they overlap.
 *
 * The buffers lie in vmh256's memory where it lets us have them, so the
 * check hashes them where they were read. A buffer is read again only
 * once its copy has ended; a task's uffd is closed (when the task is
 * dropped) only once no copy of ours runs on it, as a queued copy would
 * otherwise reach whatever fd took its number.
 */
import { vmhHalves } from '../images/index.js';
import { EAGAIN, EEXIST, PAGE_SIZE, addr, closeQuiet, uffdCopyAsync } from '../sys/index.js';
import type { CheckedPages } from './lazy-checked-pages.js';
import type { LazyTask, Piece } from './lazy-task.js';

/**
 * Buffers, so copies running at once: one copying while we read and check
 * the next chunk into the other (more were not told apart from two at
 * load 14-20; docs/performance.md, session 11).
 */
const PUSH_DEPTH = 2;
const PS = BigInt(PAGE_SIZE);
/** The buffers, kept for the next daemon in this process (vmh256's halves are never given back). */
const pool: Buffer[] = [];

export interface PushHooks {
  /** pages now in place */
  pushed(pages: number): void;
  /** the task's memory is gone (it exited): stop serving it */
  gone(t: LazyTask): void;
}

export class LocalPush {
  private readonly free: Buffer[] = [];
  private running = 0;
  private failure: unknown;
  private wake: (() => void) | undefined;

  constructor(private readonly pages: CheckedPages, private readonly hooks: PushHooks) {
    while (pool.length < PUSH_DEPTH) {
      const h = vmhHalves() ?? [Buffer.allocUnsafeSlow(1 << 20), Buffer.allocUnsafeSlow(1 << 20)];
      // Touched now, while the daemon waits for its restore: each page's first
      // touch is a fault (13 us here under shadow paging, 3-4 ms a MiB), which
      // the first pushes would otherwise pay just as the tasks start to run.
      for (const b of h) b.fill(0);
      pool.push(...h);
    }
    this.free.push(...pool.splice(0, PUSH_DEPTH));
  }

  /** The most bytes one copy takes. */
  get chunk(): number {
    return (this.free[0] ?? pool[0] ?? Buffer.alloc(0)).length;
  }

  get busy(): boolean {
    return this.running > 0;
  }

  canStart(): boolean {
    return this.free.length > 0;
  }

  /**
   * Read and check up to `maxLen` bytes of piece `p` from task address
   * `at`, then start their copy into `t`. Throws what the read or the
   * check throws (nothing is copied then).
   */
  start(t: LazyTask, p: Piece, at: bigint, maxLen: number): void {
    const buf = this.free.pop();
    if (buf === undefined) throw new Error('LocalPush.start: no free buffer (canStart() first)');
    let r;
    try {
      r = this.pages.read(p.path, p.off + (at - p.addr), maxLen, buf);
    } catch (e) {
      this.free.push(buf);
      throw e;
    }
    const range = { start: at, end: at + BigInt(r.len) };
    const gen = t.gen;
    t.flying.push(range);
    t.cursor = range.end;
    this.running++;
    uffdCopyAsync(t.uffd, at, addr(buf) + BigInt(r.at), r.len).then(
      (n) => {
        t.flying.splice(t.flying.indexOf(range), 1);
        this.ended(t, range.start, r.len, gen, n);
      },
      (e: unknown) => {
        t.flying.splice(t.flying.indexOf(range), 1);
        this.failure ??= e;
      },
    ).finally(() => {
      this.free.push(buf);
      this.running--;
      if (t.dropped && t.flying.length === 0) closeQuiet(t.uffd);
      const w = this.wake;
      this.wake = undefined;
      w?.();
    });
  }

  /** Resolves when a copy ends (at once when none runs); throws a copy's failure. */
  async anyEnd(): Promise<void> {
    if (this.running > 0) await new Promise<void>((res) => (this.wake = res));
    this.check();
  }

  /** Every copy ended (their buffers free, dropped tasks' uffds closed). */
  async drain(): Promise<void> {
    while (this.running > 0) await new Promise<void>((res) => (this.wake = res));
  }

  /** Throw the failure of a copy, if one failed (not a -errno: koffi's own). */
  check(): void {
    if (this.failure !== undefined) throw this.failure instanceof Error ? this.failure : new Error(String(this.failure));
  }

  /** Give the buffers back for the next daemon of this process. */
  close(): void {
    pool.push(...this.free.splice(0));
  }

  /**
   * What a copy did, taken off what is pending. Not when an event came
   * between its start and its end (the generation moved): its addresses
   * may be stale, and what it did copy is found present later.
   */
  private ended(t: LazyTask, at: bigint, len: number, gen: number, n: number): void {
    if (t.dropped) return;
    const same = t.gen === gen;
    if (n > 0) {
      // All of it, or the part before a page found present (EEXIST) or an event to read first (EAGAIN): the rest stays pending.
      if (same) t.cut(at, at + BigInt(n));
      this.hooks.pushed(Math.min(n, len) / PAGE_SIZE);
    } else if (n === -EEXIST) {
      if (same) t.cut(at, at + PS);
    } else if (n !== -EAGAIN && n !== 0 && same) {
      // ESRCH (the task's memory gone) or a range no longer registered with no event between: as a synchronous copy would.
      this.hooks.gone(t);
    }
  }
}
