/**
 * Reading /proc/PID/pagemap's answer (proc/pagemap.ts, one u64 per page):
 * which pages of a VMA hold data the dump must save (present, or swapped
 * where the VMA has swap; for a private file mapping only its anonymous,
 * copied-on-write pages), in runs, and which of them this process maps
 * alone (bit 56) or shares with another since a fork.
 */

// pagemap flags live in the high 32 bits of each entry (little-endian: odd
// words): testing them as plain numbers avoids a BigInt per page.
const PM_HI_PRESENT = 0x80000000; // bit 63
const PM_HI_SWAP = 0x40000000; // bit 62
const PM_HI_FILE = 0x20000000; // bit 61

/**
 * Which bits say "this page holds data". A swap entry counts only where
 * smaps says the VMA has swap: a userfaultfd write-protect marker on a page
 * never touched reads as a swap entry too (measured on 6.18), and must not
 * be read in (it is an empty page).
 */
function dataMask(hasSwap: boolean): number {
  return hasSwap ? PM_HI_PRESENT | PM_HI_SWAP : PM_HI_PRESENT;
}

/** Calls fn(firstIndex, count) for each run of pages to dump. */
export function forEachRun(pm: BigUint64Array, anonOnly: boolean, hasSwap: boolean, fn: (first: number, count: number) => void): void {
  const hi = hiWords(pm);
  const mask = dataMask(hasSwap);
  let runStart = -1;
  for (let i = 0; i < pm.length; i++) {
    const h = hi[i * 2 + 1] as number;
    const take = (h & mask) !== 0 && !(anonOnly && (h & PM_HI_FILE) !== 0);
    if (take) {
      if (runStart < 0) runStart = i;
    } else if (runStart >= 0) {
      fn(runStart, i - runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) fn(runStart, pm.length - runStart);
}

const PM_HI_EXCLUSIVE = 0x01000000; // bit 56: mapped by this process only

/** Cut pm[first, first+count) into runs of pages mapped by this process only and pages shared with another. */
export function forEachSharing(pm: BigUint64Array, first: number, count: number, fn: (at: number, n: number, shared: boolean) => void): void {
  const hi = hiWords(pm);
  // A swapped page has no "exclusive" bit: reading it in is no pin of a shared page.
  const sharedAt = (i: number): boolean => {
    const h = hi[i * 2 + 1] as number;
    return (h & PM_HI_PRESENT) !== 0 && (h & PM_HI_EXCLUSIVE) === 0;
  };
  let runStart = first;
  let runShared = sharedAt(first);
  for (let i = first + 1; i < first + count; i++) {
    const sh = sharedAt(i);
    if (sh === runShared) continue;
    fn(runStart, i - runStart, runShared);
    runStart = i;
    runShared = sh;
  }
  fn(runStart, first + count - runStart, runShared);
}

/** Whether page `i` of `pm` is present (bit 63). */
export function pagePresent(pm: BigUint64Array, i: number): boolean {
  return i >= 0 && i < pm.length && ((hiWords(pm)[i * 2 + 1] as number) & PM_HI_PRESENT) !== 0;
}

/** The high 32 bits of each entry, as the odd words of a little-endian view. */
function hiWords(pm: BigUint64Array): Uint32Array {
  return new Uint32Array(pm.buffer, pm.byteOffset, pm.length * 2);
}
