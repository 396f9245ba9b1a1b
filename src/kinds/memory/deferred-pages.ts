/**
 * A pre-dump's pages, planned while the tree is stopped and copied once it
 * runs again (CRIU's `--pre-dump-mode read`, where the task is frozen only
 * to learn what to copy).
 *
 * While the tree is stopped, the memory dump (dump.ts) decides as always
 * which runs of pages to copy and which to take from the parent images,
 * and the tracker protects every private VMA (incremental.ts); those calls
 * are recorded here instead of reading anything. Once the tree runs, the
 * record is replayed into a real PagesWriter, which reads the pages from
 * the running task. That is safe because each page was write-protected
 * before the tree resumed: a page the task writes after that (before,
 * during or after our read of it) is reported written by the next scan and
 * copied again, so whatever torn or early state this pre-dump stored is
 * never restored. A run that can no longer be read (the task unmapped it)
 * is stored as zeros through /proc/PID/mem's fallback, as the writer does
 * for any short read; such an address is in no tracked VMA at the next
 * dump, which then copies whatever is mapped there whole.
 *
 * A page server may say at replay that it has no parent for this pagemap
 * (its OPEN2 answer, known only once the pagemap is opened): the runs
 * planned as PE_PARENT are then read and sent like the others.
 */
import { PAGE_SIZE } from '../../sys/index.js';
import type { PagemapEntry } from '../../images/messages.js';
import { PE_PARENT } from '../../images/flags.js';
import { CriuTsError } from '../../errors.js';
import { appendEntry, type PageSink, type PagesWriter } from './pages-writer.js';

type Op =
  | { kind: 'break' }
  | { kind: 'add'; vaddr: bigint; n: number; flags: number; viaMem: boolean }
  | { kind: 'parent'; vaddr: bigint; n: number; flags: number; viaMem: boolean };

export interface CopiedPages {
  pagesId: number;
  entries: PagemapEntry[];
  pagesWritten: number;
  pagesSkippedParent: number;
}

export class DeferredPages implements PageSink {
  readonly entries: PagemapEntry[] = [];
  pagesWritten = 0;
  readonly isRemote = false;
  readonly remoteHasParent = false;
  private readonly ops: Op[] = [];
  private runBroken = false;

  breakRun(): void {
    this.runBroken = true;
    this.ops.push({ kind: 'break' });
  }

  add(vaddr: bigint, n: number, flags: number, viaMem: boolean): void {
    appendEntry(this.entries, vaddr, n, flags, this.runBroken);
    this.runBroken = false;
    this.pagesWritten += n;
    this.ops.push({ kind: 'add', vaddr, n, flags, viaMem });
  }

  addParent(vaddr: bigint, n: number, alt: { flags: number; viaMem: boolean }): void {
    appendEntry(this.entries, vaddr, n, PE_PARENT, this.runBroken);
    this.runBroken = false;
    this.ops.push({ kind: 'parent', vaddr, n, ...alt });
  }

  addLazy(): void {
    throw new CriuTsError('EUSAGE', 'a pre-dump cannot leave pages to a lazy page server (--lazy-pages)', {});
  }

  close(): void {
    // Nothing is open: the copy happens in replay().
  }

  /** The bytes planned, for the progress line and the writer's size hint. */
  get bytes(): number {
    return this.pagesWritten * PAGE_SIZE;
  }

  /** Read and store what was planned, from the (running) task, through `w`; closes `w`. */
  replay(w: PagesWriter): CopiedPages {
    let skipped = 0;
    w.goneAsZeros = true;
    try {
      const parentOk = !w.isRemote || w.remoteHasParent;
      for (const op of this.ops) {
        if (op.kind === 'break') w.breakRun();
        else if (op.kind === 'add') w.add(op.vaddr, op.n, op.flags, op.viaMem);
        else if (parentOk) {
          w.addParent(op.vaddr, op.n);
          skipped += op.n;
        } else {
          w.add(op.vaddr, op.n, op.flags, op.viaMem);
        }
      }
      w.close();
    } finally {
      w.close();
    }
    return { pagesId: w.pagesId, entries: w.entries, pagesWritten: w.pagesWritten, pagesSkippedParent: skipped };
  }
}
