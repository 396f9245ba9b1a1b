/**
 * What a restore will read from parent images (pre-dump chains,
 * parent-images.ts): for every PE_PARENT entry of every task's pagemap,
 * the pages file of the parent that holds each page and the byte range in
 * it. The restore checks exactly these bytes against each parent's own
 * criu-ts-checksums before it creates anything (restore/images.ts): a
 * parent's other pages may have been freed by a dedup, or belong to a
 * dump that is not being restored.
 */
import { PAGE_SIZE } from '../../sys/index.js';
import { imageFile } from '../../images/index.js';
import type { MmEntry, PagemapEntry, VmaEntry } from '../../images/messages.js';
import { isParentEntry, entryPages, ParentChain } from './parent-images.js';
import { isLazyVma } from './lazy.js';
import { VMA } from './vma.js';

/** Byte ranges of a file, in no particular order. */
export type FileReads = Map<string, { start: bigint; end: bigint }[]>;

/**
 * The parent pages files' ranges a restore of `dir` reads for these tasks
 * (`pid`: the task's pid in the images). `lazy`: pages wholly inside lazy
 * VMAs are left out (the lazy-pages daemon reads and checks those as it
 * serves them). EIMAGE when a parent is missing or lacks a page.
 */
export function parentReads(dir: string, tasks: readonly { pid: number; mm: MmEntry; pagemap: readonly PagemapEntry[] }[], lazy: boolean): FileReads {
  const chain = new ParentChain(dir);
  const out: FileReads = new Map();
  const special = VMA.AREA_VDSO | VMA.AREA_VVAR | VMA.AREA_VSYSCALL;
  for (const t of tasks) {
    const vmas = t.mm.vmas ?? [];
    const within = (vs: readonly VmaEntry[], a: bigint, b: bigint): boolean => vs.some((v) => v.start <= a && b <= v.end);
    // The restore skips the vDSO's pages (the running kernel's is used) and leaves lazy VMAs to the daemon.
    const skipped = vmas.filter((v) => (v.status & special) !== 0 || (lazy && isLazyVma(v)));
    for (const e of t.pagemap) {
      if (!isParentEntry(e)) continue;
      const len = entryPages(e) * BigInt(PAGE_SIZE);
      if (within(skipped, e.vaddr, e.vaddr + len)) continue;
      for (const sg of chain.locate(imageFile('PAGEMAP', t.pid), e.vaddr, len)) {
        let rs = out.get(sg.path);
        if (rs === undefined) out.set(sg.path, (rs = []));
        rs.push({ start: sg.off, end: sg.off + sg.len });
      }
    }
  }
  return out;
}
