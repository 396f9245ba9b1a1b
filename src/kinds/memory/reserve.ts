/**
 * One injected mmap for a run of private anonymous VMAs. Every VMA the
 * restore maps costs a round trip into the task; a process with thousands
 * of VMAs (guard pages between areas, a JIT's or an allocator's splits, a
 * file mapped page by page) pays one per VMA. So the VMAs are read as runs
 * of address-adjacent areas, each either plain private anonymous memory or
 * a file mapping: the run is mapped at once as anonymous memory with one
 * protection, the file mappings are then mapped over it (MAP_FIXED, as
 * before), and only the anonymous VMAs with another protection get an
 * mprotect. The kernel splits and merges the areas as it would separate
 * mmaps of the same protections.
 *
 * The run's own protection is the commonest non-writable one among its
 * anonymous VMAs (the commonest one when all are writable), so an mprotect
 * only ever adds write permission, or keeps it: a private area made
 * writable is charged to the commit limit as an mmap would charge it,
 * where one made read-only by mprotect would stay charged (VM_ACCOUNT),
 * unlike an area mapped read-only in the first place.
 *
 * Not in a run: stacks (MAP_GROWSDOWN), locked, hugetlb and droppable
 * memory, shared anonymous memory, SysV shm, AIO rings, shadow stacks,
 * inherited VMAs (`skip`); each is mapped alone, as before.
 */
import type { VmaEntry } from '../../images/messages.js';
import { MAP_GROWSDOWN, MAP_LOCKED, MAP_HUGETLB, MAP_DROPPABLE, MAP_NORESERVE, PROT_WRITE } from '../../sys/mman.js';
import { MAP_HUGE_MASK } from './hugetlb.js';
import { VMA } from './vma.js';

/** One anonymous mapping standing in for several VMAs. */
export interface AnonRun {
  start: bigint;
  end: bigint;
  /** the protection the whole run is mapped with */
  prot: number;
  /** MAP_NORESERVE or 0, the same for every anonymous VMA of the run */
  noreserve: number;
  /** VMAs of the run mapped as part of it (their own mmap is not made) */
  anon: Set<VmaEntry>;
}

const PLAIN_ANON_STATUS = VMA.AREA_REGULAR | VMA.ANON_PRIVATE | VMA.AREA_HEAP;
const ALONE_FLAGS = MAP_GROWSDOWN | MAP_LOCKED | MAP_HUGETLB | MAP_HUGE_MASK | MAP_DROPPABLE;

function plainAnon(v: VmaEntry): boolean {
  return (v.status & VMA.ANON_PRIVATE) !== 0 && (v.status & ~PLAIN_ANON_STATUS) === 0 && (v.flags & ALONE_FLAGS) === 0;
}

function fileMapping(v: VmaEntry): boolean {
  return (v.status & (VMA.FILE_PRIVATE | VMA.FILE_SHARED)) !== 0 && (v.status & (VMA.AREA_AIORING | VMA.AREA_SYSVIPC | VMA.AREA_SOCKET | VMA.AREA_SHSTK)) === 0;
}

function commonest(prots: readonly number[]): number {
  const n = new Map<number, number>();
  let best = prots[0] ?? 0;
  for (const p of prots) {
    const c = (n.get(p) ?? 0) + 1;
    n.set(p, c);
    if (c > (n.get(best) ?? 0)) best = p;
  }
  return best;
}

/**
 * The runs worth one mapping (at least two anonymous VMAs mapped by it, so
 * at least one round trip saved), by member: every VMA inside a run's
 * range, anonymous or file, maps to its run. `protOf` is the protection a
 * VMA is to be mapped with (writable while its pages are filled).
 */
export function planAnonRuns(vmas: readonly VmaEntry[], skip: (v: VmaEntry) => boolean, protOf: (v: VmaEntry) => number): Map<VmaEntry, AnonRun> {
  const sorted = [...vmas].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out = new Map<VmaEntry, AnonRun>();
  let group: VmaEntry[] = [];
  const close = (): void => {
    // Trim file mappings off both ends: only the span between anonymous VMAs is mapped as one.
    let lo = 0;
    let hi = group.length;
    while (lo < hi && !plainAnon(group[lo] as VmaEntry)) lo++;
    while (hi > lo && !plainAnon(group[hi - 1] as VmaEntry)) hi--;
    const members = group.slice(lo, hi);
    group = [];
    const anon = members.filter(plainAnon);
    const prots = anon.map(protOf);
    const readOnly = prots.filter((p) => (p & PROT_WRITE) === 0);
    const prot = commonest(readOnly.length > 0 ? readOnly : prots);
    const covered = anon.filter((v) => protOf(v) === prot).length;
    if (covered < 2) return;
    const first = members[0] as VmaEntry;
    const run: AnonRun = { start: first.start, end: (members[members.length - 1] as VmaEntry).end, prot, noreserve: first.flags & MAP_NORESERVE, anon: new Set(anon) };
    for (const v of members) out.set(v, run);
  };
  // MAP_NORESERVE of the group's anonymous VMAs (the same for all of them), once there is one.
  let reserve: number | undefined;
  for (const v of sorted) {
    const last = group[group.length - 1];
    const joins = !skip(v) && (fileMapping(v) || plainAnon(v));
    const sameReserve = !plainAnon(v) || reserve === undefined || reserve === (v.flags & MAP_NORESERVE);
    if (last !== undefined && (!joins || last.end !== v.start || !sameReserve)) {
      close();
      reserve = undefined;
    }
    if (!joins) continue;
    group.push(v);
    if (plainAnon(v)) reserve = v.flags & MAP_NORESERVE;
  }
  close();
  return out;
}

/**
 * The madvise calls for VMAs' advice bits (vma_entry.madv, bit n = advice
 * n): one per advice for each run of address-adjacent VMAs that all had
 * it. Every advice recorded is one that sets a flag on each VMA of the
 * range it is given (MADV_BY_VMFLAG in vma.ts), so a run takes it as its
 * VMAs one by one would; the range never spans a hole (which would fail
 * with ENOMEM) nor a VMA without the bit.
 */
export function adviceRuns(vmas: readonly VmaEntry[]): { start: bigint; end: bigint; advice: number }[] {
  const sorted = [...vmas].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: { start: bigint; end: bigint; advice: number }[] = [];
  const open = new Map<number, { start: bigint; end: bigint; advice: number }>();
  for (const v of sorted) {
    const madv = v.madv ?? 0n;
    const words = [Number(madv & 0xffffffffn), Number(madv >> 32n)] as const;
    for (let a = 0; a < 64; a++) {
      const has = (((words[a >> 5] as number) >>> (a & 31)) & 1) !== 0;
      const run = open.get(a);
      if (run !== undefined && (!has || run.end !== v.start)) {
        out.push(run);
        open.delete(a);
      }
      if (!has) continue;
      const cur = open.get(a);
      if (cur !== undefined) cur.end = v.end;
      else open.set(a, { start: v.start, end: v.end, advice: a });
    }
  }
  out.push(...open.values());
  return out;
}
