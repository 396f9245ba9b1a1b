/**
 * Sorted, non-overlapping address ranges [start, end): what an incremental
 * dump combines (pages that hold data, pages written since the parent,
 * addresses the parent holds) without a per-page array.
 */
export interface Range {
  start: bigint;
  end: bigint;
}

/** Order of ranges by their start. */
export const byStart = (a: Range, b: Range): number => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);

/** `rs` (in any order, overlapping or not) sorted, with overlapping and touching ranges joined. */
export function merged(rs: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const r of [...rs].sort(byStart)) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) {
      if (r.end > last.end) last.end = r.end;
    } else out.push({ start: r.start, end: r.end });
  }
  return out;
}

/** Index of the first range of `a` (sorted, non-overlapping) that ends after `at`. */
function firstEndingAfter(a: readonly Range[], at: bigint): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((a[mid] as Range).end <= at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The range of `a` (sorted, non-overlapping) that holds address `at`, by binary search. */
export function rangeAt<R extends Range>(a: readonly R[], at: bigint): R | undefined {
  const r = a[firstEndingAfter(a, at)];
  return r && r.start <= at ? r : undefined;
}

/**
 * The parts of `a` (sorted, non-overlapping) inside [start, end), found by
 * binary search: a task with tens of thousands of VMAs asks this once per
 * VMA, so a walk from the first range would be quadratic.
 */
export function clip(a: readonly Range[], start: bigint, end: bigint): Range[] {
  const lo = firstEndingAfter(a, start);
  const out: Range[] = [];
  for (let i = lo; i < a.length; i++) {
    const r = a[i] as Range;
    if (r.start >= end) break;
    out.push({ start: r.start > start ? r.start : start, end: r.end < end ? r.end : end });
  }
  return out;
}

/** A minus B (both sorted and non-overlapping); the result is sorted. */
export function subtract(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  let j = 0;
  for (const r of a) {
    let from = r.start;
    while (j < b.length && (b[j] as Range).end <= from) j++;
    let k = j;
    while (from < r.end) {
      const cut = b[k];
      if (!cut || cut.start >= r.end) {
        out.push({ start: from, end: r.end });
        break;
      }
      if (cut.start > from) out.push({ start: from, end: cut.start });
      if (cut.end >= r.end) break;
      from = cut.end > from ? cut.end : from;
      k++;
    }
  }
  return out;
}

/**
 * Walks the ranges of `data` in order, cut where they enter or leave
 * `inside`: fn(start, end, isInside) for each piece.
 */
export function splitBy(data: readonly Range[], inside: readonly Range[], fn: (start: bigint, end: bigint, isInside: boolean) => void): void {
  let j = 0;
  for (const r of data) {
    let at = r.start;
    while (j < inside.length && (inside[j] as Range).end <= at) j++;
    let k = j;
    while (at < r.end) {
      const c = inside[k];
      if (!c || c.start >= r.end) {
        fn(at, r.end, false);
        break;
      }
      if (c.start > at) {
        fn(at, c.start, false);
        at = c.start;
      }
      const to = c.end < r.end ? c.end : r.end;
      fn(at, to, true);
      at = to;
      k++;
    }
  }
}

/**
 * The stretches one munmap each empties: `drop` (sorted, not overlapping)
 * joined across the holes between its ranges, but never across a range of
 * `kept`. munmap spans VMAs and holes alike (nothing happens in a hole),
 * so a stub's twenty-odd mappings go in one to three calls.
 */
export function unmapSpans(drop: readonly Range[], kept: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const r of drop) {
    const last = out[out.length - 1];
    if (last && !kept.some((k) => k.start < r.start && k.end > last.end)) last.end = r.end;
    else out.push({ start: r.start, end: r.end });
  }
  return out;
}
