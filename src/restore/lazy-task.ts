/**
 * What the lazy-pages daemon (lazy-pages.ts) still has to send to one
 * task: its pending pieces, sorted by address and never overlapping, cut
 * as pages are copied, moved on mremap, dropped on munmap and DONTNEED;
 * and where the next background push starts.
 */
import type { LazyRange } from '../kinds/types.js';

/** Bytes still to send: `len` bytes now at `addr` in the task, from `path` at `off` (`img`: their address in the images). */
export interface Piece { addr: bigint; len: bigint; path: string; off: bigint; img: bigint }

export class LazyTask {
  pending: Piece[];
  /** where the next push starts: just after the task's last fault (it tends to go on from there) */
  cursor = 0n;
  /**
   * Bumped at each event that moves or drops memory (fork, remap, remove,
   * unmap): a background copy started before one is not taken off
   * `pending` when it ends, as its addresses may no longer be the
   * pieces' (a page it did copy is found present later: EEXIST, skipped).
   */
  gen = 0;
  /** the ranges of background copies still running (lazy-push.ts): next() hands them out again only once they end */
  readonly flying: { start: bigint; end: bigint }[] = [];
  /** dropped (its memory gone): its uffd is closed once no copy of ours runs on it */
  dropped = false;
  constructor(readonly label: string, readonly uffd: number, pending: Piece[], readonly pid: number, readonly imageId: number) {
    this.pending = pending;
  }

  /** Index of the first piece that ends after `a` (pieces are sorted by addr and do not overlap). */
  private after(a: bigint): number {
    let lo = 0;
    let hi = this.pending.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const p = this.pending[mid] as Piece;
      if (p.addr + p.len <= a) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(a: bigint): number {
    const i = this.after(a);
    const p = this.pending[i];
    return p && p.addr <= a ? i : -1;
  }

  /**
   * The next run to push: from the cursor on, in address order, then from
   * the start again; none of it in a copy still running (`len`: how far it
   * may go). Undefined when nothing is left but what is in flight.
   */
  next(): { p: Piece; at: bigint; len: bigint } | undefined {
    const n = this.pending.length;
    const i0 = this.after(this.cursor);
    for (let k = 0; k < n; k++) {
      const p = this.pending[(i0 + k) % n] as Piece;
      let at = k === 0 && p.addr < this.cursor && this.cursor < p.addr + p.len ? this.cursor : p.addr;
      let end = p.addr + p.len;
      // Step over the copies in flight (a few at most) inside this piece.
      for (let moved = true; moved && at < end;) {
        moved = false;
        for (const f of this.flying) {
          if (f.start <= at && at < f.end) {
            at = f.end;
            moved = true;
          } else if (at < f.start && f.start < end) {
            end = f.start;
          }
        }
      }
      if (at < end) return { p, at, len: end - at };
    }
    return undefined;
  }

  /** Remove [start, end) from what is pending; returns the pieces cut out (in order). */
  cut(start: bigint, end: bigint): Piece[] {
    const repl: Piece[] = [];
    const gone: Piece[] = [];
    const i = this.after(start);
    let j = i;
    for (; j < this.pending.length; j++) {
      const p = this.pending[j] as Piece;
      if (p.addr >= end) break;
      const pe = p.addr + p.len;
      if (p.addr < start) repl.push({ ...p, len: start - p.addr });
      const from = p.addr > start ? p.addr : start;
      const to = pe < end ? pe : end;
      gone.push({ addr: from, len: to - from, path: p.path, off: p.off + (from - p.addr), img: p.img + (from - p.addr) });
      if (pe > end) repl.push({ addr: end, len: pe - end, path: p.path, off: p.off + (end - p.addr), img: p.img + (end - p.addr) });
    }
    if (j > i || repl.length > 0) this.pending.splice(i, j - i, ...repl);
    return gone;
  }

  insert(ps: Piece[]): void {
    this.pending.push(...ps);
    this.pending.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  }
}

export type Seg = { path: string; off: bigint; vaddr: bigint; len: bigint };

/** The parts of `segs` (sorted by vaddr, not overlapping) inside `ranges`, as pieces; a binary search per range. */
export function onlyIn(segs: readonly Seg[], ranges: readonly LazyRange[]): Piece[] {
  const out: Piece[] = [];
  for (const r of ranges) {
    let lo = 0;
    let hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const g = segs[mid] as Seg;
      if (g.vaddr + g.len <= r.start) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < segs.length; i++) {
      const sg = segs[i] as Seg;
      if (sg.vaddr >= r.end) break;
      const end = sg.vaddr + sg.len;
      const a = r.start > sg.vaddr ? r.start : sg.vaddr;
      const b = r.end < end ? r.end : end;
      if (b > a) out.push({ addr: a, len: b - a, path: sg.path, off: sg.off + (a - sg.vaddr), img: a });
    }
  }
  return out.sort((x, y) => (x.addr < y.addr ? -1 : x.addr > y.addr ? 1 : 0));
}
