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
 */
import { statSync } from 'node:fs';
import { ownCleanMappingsOf } from '../proc/index.js';
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
