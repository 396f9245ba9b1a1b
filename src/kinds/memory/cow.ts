/**
 * Copy-on-write sharing between a restored parent and the children it
 * forks. Kernel object: the private anonymous pages (and the anonymous COW
 * pages of private file mappings) that fork() shares between two mm's until
 * one of them writes. The images carry no trace of that sharing (each task's
 * pagemap holds all of its pages, as CRIU writes them); it is found again
 * at restore, as CRIU does: the parent's memory is restored before its
 * children are forked, each child keeps the private VMAs it inherits
 * exactly (same range, same kind, same file), and in those only the pages
 * whose content differs from the parent's are written; pages the parent
 * has and the child had not are dropped (MADV_DONTNEED). A page equal in
 * both stays one physical page.
 *
 * Limits: VMAs whose inheritance fork itself would alter (MADV_DONTFORK,
 * MADV_WIPEONFORK, locked, droppable, hugetlb) or whose madvise bits or
 * guard regions differ between parent and child are mapped afresh in the child; tasks running
 * different executables share nothing (fork never makes such a pair).
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { NR, PAGE_SIZE, ProcMem, MADV_DONTNEED } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import type { MmEntry, PagemapEntry, VmaEntry } from '../../images/messages.js';
import type { RestoreTaskHandle } from '../types.js';
import { VMA } from './vma.js';
import { MAP_ANONYMOUS, MAP_GROWSDOWN, MAP_LOCKED, MAP_DROPPABLE, MAP_HUGETLB } from '../../sys/mman.js';
import { pagemapRanges, type Segment } from './parent-images.js';
import { byStart, subtract, splitBy, type Range } from './ranges.js';
import { isGuard } from './guard.js';

const NOT_INHERITED_MADV = (1n << 10n) | (1n << 18n); // MADV_DONTFORK, MADV_WIPEONFORK
const SPECIAL = VMA.AREA_VDSO | VMA.AREA_VVAR | VMA.AREA_VSYSCALL | VMA.AREA_AIORING | VMA.AREA_SYSVIPC | VMA.AREA_GUARD;
const CHUNK = 1 << 20;

/** What a child restored after its parent inherits from it: the parent's VMAs and pages. */
export interface ParentMemory {
  mm: MmEntry;
  pagemap: readonly PagemapEntry[];
}

/**
 * The child's VMAs fork gave it (its VMA → the parent's VMAs it lies in).
 * A child VMA may cover several parent VMAs (merged in the child after an
 * mprotect that split them in the parent) or part of one.
 */
export type Inherited = ReadonlyMap<VmaEntry, readonly VmaEntry[]>;


function cowable(v: VmaEntry): boolean {
  if ((v.status & (VMA.ANON_PRIVATE | VMA.FILE_PRIVATE)) === 0) return false;
  if ((v.status & (VMA.ANON_SHARED | VMA.FILE_SHARED | SPECIAL)) !== 0) return false;
  if ((v.flags & (MAP_HUGETLB | MAP_LOCKED | MAP_DROPPABLE)) !== 0) return false;
  return ((v.madv ?? 0n) & NOT_INHERITED_MADV) === 0n;
}

/** Could fork have given the child `v` from `p` (the part where they overlap)? */
function sameObject(v: VmaEntry, p: VmaEntry): boolean {
  if (!cowable(p)) return false;
  if (((v.flags ^ p.flags) & (MAP_GROWSDOWN | MAP_ANONYMOUS)) !== 0) return false;
  if ((v.madv ?? 0n) !== (p.madv ?? 0n)) return false;
  if ((v.status & VMA.FILE_PRIVATE) === 0) return (p.status & VMA.FILE_PRIVATE) === 0;
  // The same file, at the same offset for the same address.
  return (p.status & VMA.FILE_PRIVATE) !== 0 && v.shmid === p.shmid && v.pgoff - v.start === p.pgoff - p.start;
}

/** Pair each private VMA of the child with the parent's VMAs that fork copied it from. */
export function inheritedVmas(parent: MmEntry, child: MmEntry): Inherited {
  const out = new Map<VmaEntry, VmaEntry[]>();
  if (parent.exe_file_id !== child.exe_file_id) return out;
  const ps = (parent.vmas ?? []).filter((p) => !isGuard(p)).sort(byStart);
  // Guard markers are inherited with the pages: a VMA only where both have the same ones.
  const guards = (vs: readonly VmaEntry[], v: VmaEntry): string => vs
    .filter((g) => isGuard(g) && g.start < v.end && v.start < g.end)
    .map((g) => `${g.start > v.start ? g.start : v.start}-${g.end < v.end ? g.end : v.end}`).sort().join(',');
  for (const v of child.vmas ?? []) {
    if (!cowable(v)) continue;
    if (guards(parent.vmas ?? [], v) !== guards(child.vmas ?? [], v)) continue;
    const over = ps.filter((p) => p.start < v.end && v.start < p.end);
    // Every byte of v must come from a parent VMA of the same object.
    let at = v.start;
    for (const p of over) {
      if (p.start > at || !sameObject(v, p)) break;
      at = p.end;
    }
    if (over.length > 0 && at >= v.end) out.set(v, over);
  }
  return out;
}

/** The inherited ranges, sorted. */
export function inheritedRanges(inh: Inherited): Range[] {
  return [...inh.keys()].map((v) => ({ start: v.start, end: v.end })).sort(byStart);
}

/** Cut page segments into those inside the inherited ranges and the rest. */
export function splitSegments(segs: readonly Segment[], inherited: readonly Range[]): { fresh: Segment[]; shared: Segment[] } {
  const fresh: Segment[] = [];
  const shared: Segment[] = [];
  const sorted = [...segs].sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  for (const s of sorted) {
    splitBy([{ start: s.vaddr, end: s.vaddr + s.len }], inherited, (start, end, inside) => {
      (inside ? shared : fresh).push({ path: s.path, off: s.off + (start - s.vaddr), vaddr: start, len: end - start });
    });
  }
  return { fresh, shared };
}

export interface CowStats { compared: number; skipped: number; written: number; dropped: number }

/**
 * In the child's inherited VMAs: write the pages whose image differs from
 * what the child holds now (its parent's), through /proc/PID/mem (which
 * breaks the sharing of that one page, whatever the VMA's protection),
 * then drop the parent's pages the child did not have.
 */
export function settleInherited(
  t: RestoreTaskHandle, inh: Inherited, shared: readonly Segment[], childPagemap: readonly PagemapEntry[], parent: ParentMemory,
): CowStats {
  const stats: CowStats = { compared: 0, skipped: 0, written: 0, dropped: 0 };
  const mem = new ProcMem(t.pid, true);
  const fds = new Map<string, number>();
  const { img, cur } = compareBuffers(shared);
  try {
    for (const s of shared) {
      let fd = fds.get(s.path);
      if (fd === undefined) {
        fd = openSync(s.path, constants.O_RDONLY | constants.O_NOFOLLOW);
        fds.set(s.path, fd);
      }
      for (let done = 0n; done < s.len;) {
        const len = Number(s.len - done < BigInt(CHUNK) ? s.len - done : BigInt(CHUNK));
        const at = s.vaddr + done;
        readFull(fd, img, len, s.off + done, s.path);
        if (mem.read(at, cur, 0, len) !== len) {
          throw new CriuTsError('ERESTORE', `task ${t.pid}: cannot read its inherited memory at 0x${at.toString(16)}`, { pid: t.pid });
        }
        // Runs of differing pages, each written with one call.
        let run = -1;
        for (let p = 0; p <= len; p += PAGE_SIZE) {
          const same = p < len && img.compare(cur, p, p + PAGE_SIZE, p, p + PAGE_SIZE) === 0;
          if (p < len) {
            stats.compared++;
            if (same) stats.skipped++;
            else stats.written++;
          }
          if (!same && p < len) {
            if (run < 0) run = p;
          } else if (run >= 0) {
            if (mem.write(at + BigInt(run), img, run, p - run) !== p - run) {
              throw new CriuTsError('ERESTORE', `task ${t.pid}: cannot write its memory at 0x${(at + BigInt(run)).toString(16)}`, { pid: t.pid });
            }
            run = -1;
          }
        }
        done += BigInt(len);
      }
    }
  } finally {
    mem.close();
    for (const fd of fds.values()) closeSync(fd);
  }
  // Pages the parent holds in the inherited VMAs that the child had not: gone in the child.
  const inside = inheritedRanges(inh);
  const parentPages: Range[] = [];
  splitBy(pagemapRanges(parent.pagemap), inside, (start, end, isIn) => { if (isIn) parentPages.push({ start, end }); });
  for (const r of subtract(parentPages, pagemapRanges(childPagemap))) {
    t.syscall('madvise(DONTNEED)', NR.madvise, r.start, r.end - r.start, MADV_DONTNEED);
    stats.dropped += Number((r.end - r.start) / BigInt(PAGE_SIZE));
  }
  return stats;
}

// One pair for all the tasks of a restore, as big as the largest shared
// segment needs (at most CHUNK): a zero-filled 1 MiB pair per child was
// 2 MiB of garbage per process of a tree, and glibc kept the freed memory.
let compare: { img: Buffer; cur: Buffer } | undefined;

function compareBuffers(shared: readonly Segment[]): { img: Buffer; cur: Buffer } {
  let want = 0;
  for (const s of shared) want = Math.max(want, s.len < BigInt(CHUNK) ? Number(s.len) : CHUNK);
  if (compare === undefined || compare.img.length < want) {
    // Every byte compared is read first (readFull, mem.read): no need to zero them.
    compare = { img: Buffer.allocUnsafe(want), cur: Buffer.allocUnsafe(want) };
  }
  return compare;
}

function readFull(fd: number, buf: Buffer, len: number, off: bigint, path: string): void {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, Number(off) + got);
    if (n === 0) throw new CriuTsError('EIMAGE', `${path}: ends before the pagemap says`, { path });
    got += n;
  }
}
