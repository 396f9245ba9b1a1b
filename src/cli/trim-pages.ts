/**
 * The node binary's pages that only Node's start used, out of the resident
 * set before a command's work begins. Node's start touches about 30 MiB of
 * its own binary (the startup snapshot, the bootstrap's code and built-in
 * sources, ICU's data), most of which a dump or restore never reads again,
 * yet every page stays mapped, counted in criu-ts's RSS to the end: a
 * third of the 64 MiB budget (issue 9, docs/performance.md "Peak RSS,
 * eighth pass"). Dropping the mappings' pages from our page tables
 * (MADV_DONTNEED on private, unwritten file mappings: the pages stay in
 * the page cache) leaves them to be mapped again, by a minor fault, by
 * whatever code runs next; the start's own are never touched again. Every
 * dump and restore case gains 5-13 MiB of peak RSS; the cost is 10-20 ms
 * of CPU per run (the drop itself, then the faults of the code that comes
 * back): measured in docs/performance.md.
 *
 * The kernel's high-water mark is taken before a drop, so this helps only
 * before the growth it is to offset: first thing of a command. Never
 * fails a command: a kernel or /proc that says no leaves the pages where
 * they are.
 *
 * Not for a small job (`smallJob`): a dump of one small process, or the
 * restore of a few small images. Its work grows criu-ts's resident set by
 * 3 MiB or so past what Node's start left (46 -> 49 MiB for the 1 MiB
 * case), far under the 64 MiB budget, while the drop and its faults were
 * 11-12 ms of a 140-150 ms run's CPU (docs/performance.md, "1 MiB through
 * the CLI, session 15"). A big heap still gets its code pages dropped
 * later (heap.ts trimIfGrown).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isSmallProcess, ownCleanMappingsOf } from '../proc/index.js';
import { dropFilePages } from '../sys/index.js';
import { logger } from '../log.js';

const log = logger('criu-ts');

/** Drop the resident pages of the node binary's clean mappings; returns the KiB dropped. */
export function dropStartupPages(): number {
  let kb = 0;
  try {
    const st = statSync(process.execPath, { bigint: true });
    for (const m of ownCleanMappingsOf(st.dev, st.ino)) {
      if (dropFilePages(m.start, Number(m.end - m.start))) kb += m.residentKb;
    }
  } catch (e) {
    log.debug(`start-up pages kept: ${(e as Error).message}`);
  }
  return kb;
}

/** What a small restore's images come to: few files, small but for the pages (streamed through a fixed buffer). */
const SMALL_IMAGES = { files: 32, bytes: 64 << 10, pagesBytes: 16 << 20 };

/** Whether the images at `dir` are a small restore's; any doubt answers false. */
function smallImages(dir: string): boolean {
  try {
    const names = readdirSync(dir);
    if (names.length > SMALL_IMAGES.files) return false;
    let bytes = 0;
    let pages = 0;
    for (const name of names) {
      const size = statSync(join(dir, name)).size;
      if (name.startsWith('pages-')) pages += size;
      else bytes += size;
    }
    return bytes <= SMALL_IMAGES.bytes && pages <= SMALL_IMAGES.pagesBytes;
  } catch {
    return false;
  }
}

/** A dump of one small process (`tree`), or a restore of small images (`imagesDir`): their start-up pages are kept. */
export function smallJob(command: string, o: { tree?: number | undefined; imagesDir: string }): boolean {
  if (command === 'dump' || command === 'pre-dump') return o.tree !== undefined && isSmallProcess(o.tree);
  if (command === 'restore') return o.imagesDir !== '' && smallImages(o.imagesDir);
  return false;
}
