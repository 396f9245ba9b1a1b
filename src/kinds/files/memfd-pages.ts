/**
 * The contents of a memfd (or any shmem object) in CRIU's layout:
 * pagemap-shmem-<shmid>.img (head naming pages-N.img, then entries whose
 * vaddr is an offset into the object) and pages-N.img with the pages back
 * to back. N comes from the dump's own count of pages images.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { imageFile, imagePath, PE_PRESENT } from '../../images/index.js';
import { stateKey, type DumpContext, type RestoreContext } from '../types.js';
import type { PagemapEntry } from '../../images/messages.js';
import { CriuTsError } from '../../errors.js';
import { PAGE_SIZE } from '../../sys/index.js';


/** Page-aligned data at an offset of the object (data.length is a multiple of the page size). */
export interface DataRun {
  offset: number;
  data: Buffer;
}

const SHMEM_SAVED = stateKey<Set<bigint>>('shmem:pages-saved');

/**
 * The shmem objects (by inode) whose pages this dump has saved: a shared
 * anonymous object met both as a mapping (the memory kind) and as an fd or
 * a private mapping through map_files (saved as a memfd) is written once.
 */
export function shmemPagesSaved(ctx: DumpContext): Set<bigint> {
  return ctx.memo(SHMEM_SAVED, () => new Set<bigint>());
}

export function writeShmemPages(ctx: DumpContext, shmid: number, runs: readonly DataRun[]): void {
  const ps = ctx.pageServer;
  if (ps) {
    // The server names the pages file; nothing of it stays here (a copy
    // here too would be two images of one name in a shared dir). Sent at
    // the end: the page server takes one pagemap at a time, and a memfd
    // mapped by a task is met while that task's own pagemap is open.
    ctx.countSharedPages(runs.reduce((n, r) => n + r.data.length / PAGE_SIZE, 0));
    ctx.atEnd(() => {
      ps.open({ type: 'shmem', id: shmid });
      for (const r of runs) ps.add(PE_PRESENT, BigInt(r.offset), r.data.length / PAGE_SIZE, r.data);
    });
    return;
  }
  const pagesId = ctx.nextPagesId();
  const entries: PagemapEntry[] = runs.map((r) => ({
    vaddr: BigInt(r.offset), compat_nr_pages: 0, flags: PE_PRESENT, nr_pages: BigInt(r.data.length / PAGE_SIZE),
  }));
  const pages = Buffer.concat(runs.map((r) => r.data));
  ctx.writeRawImage(imageFile('PAGES', pagesId), pages);
  ctx.saveImage('SHMEM_PAGEMAP', shmid, [{ pages_id: pagesId }, ...entries]);
  ctx.countSharedPages(pages.length / PAGE_SIZE);
}

/** The runs of a shmem object back from its images (none if it had no data). */
export function readShmemPages(ctx: RestoreContext, shmid: number): DataRun[] {
  const pm = ctx.image('SHMEM_PAGEMAP', shmid);
  if (!pm) return [];
  const [head, ...entries] = pm.entries;
  const pages = imagePath(ctx.dir, 'PAGES', head.pages_id);
  const fd = openSync(pages, 'r');
  try {
    let at = 0;
    return entries.map((e) => {
      const n = Number(e.nr_pages ?? BigInt(e.compat_nr_pages)) * PAGE_SIZE;
      const data = Buffer.alloc(n);
      if (readSync(fd, data, 0, n, at) !== n) throw new CriuTsError('EIMAGE', `${pages}: short read at ${at}`, { file: pages });
      at += n;
      return { offset: Number(e.vaddr), data };
    });
  } finally {
    closeSync(fd);
  }
}
