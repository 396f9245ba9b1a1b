/**
 * Iterative migration's point: the final freeze. A process with N MiB
 * that keeps writing P % of its pages per second (bench/c/mem-dirtier.c)
 * is dumped twice per run, each time from a fresh start:
 *  - full: one dump (the tree is frozen for the whole copy);
 *  - iterative: pre-dump, 1 s, pre-dump on it, 1 s, then the final dump
 *    with --prev-images-dir: frozen only while the pages written in the
 *    last second are copied.
 * The figure is each dump's frozen time (stats-dump's frozen_time: from
 * the first seize to complete images), medians over the runs.
 */
import { join } from 'node:path';
import { dump, preDump } from '../src/api/index.js';
import { buildHelper, startHeld, killHeld, shmDir, removeDir, median, sleep, status } from './helpers.js';

export interface IncrementalResult {
  mib: number;
  percent: number;
  runs: number;
  fullFrozenMs: number;
  finalFrozenMs: number;
  preDumpFrozenMs: number[];
  finalPagesWritten: number;
  finalPagesInParent: number;
}

export async function incrementalCase(mib: number, percent: number, runs: number): Promise<IncrementalResult> {
  const exe = buildHelper('mem-dirtier');
  const full: number[] = [];
  const fin: number[] = [];
  const pre: number[][] = [[], []];
  let written = 0;
  let inParent = 0;
  // Run 0 warms the VM's memory up and is not counted.
  for (let i = 0; i <= runs; i++) {
    const keep = i > 0;
    const tag = `${mib} MiB dirtying ${percent}%/s, ${keep ? `run ${i}/${runs}` : 'warm-up'}`;
    const dir = shmDir(`incr-${mib}m`);
    try {
      status(`${tag}: full dump`);
      let h = await startHeld(exe, [String(mib), String(percent), join(dir, 'ready')], join(dir, 'ready'));
      try {
        await sleep(1000);
        const r = await dump({ pid: h.pid, imagesDir: join(dir, 'full'), progress: false });
        if (keep) full.push(r.stats.frozenTimeUs / 1000);
        await h.exited();
      } finally {
        await killHeld(h);
      }
      removeDir(join(dir, 'full'));
      status(`${tag}: pre-dump, pre-dump, final dump`);
      h = await startHeld(exe, [String(mib), String(percent), join(dir, 'ready')], join(dir, 'ready'));
      try {
        await sleep(1000);
        const p1 = await preDump({ pid: h.pid, imagesDir: join(dir, 'pre1'), progress: false });
        await sleep(1000);
        const p2 = await preDump({ pid: h.pid, imagesDir: join(dir, 'pre2'), prevImagesDir: '../pre1', progress: false });
        await sleep(1000);
        const r = await dump({ pid: h.pid, imagesDir: join(dir, 'final'), prevImagesDir: '../pre2', progress: false });
        if (keep) {
          pre[0]?.push(p1.stats.frozenTimeUs / 1000);
          pre[1]?.push(p2.stats.frozenTimeUs / 1000);
          fin.push(r.stats.frozenTimeUs / 1000);
          written = r.stats.pagesWritten;
          inParent = r.stats.pagesSkippedParent;
        }
        await h.exited();
      } finally {
        await killHeld(h);
      }
    } finally {
      removeDir(dir);
    }
  }
  return {
    mib, percent, runs,
    fullFrozenMs: median(full), finalFrozenMs: median(fin),
    preDumpFrozenMs: pre.map((xs) => median(xs)),
    finalPagesWritten: written, finalPagesInParent: inParent,
  };
}

export function incrementalLines(r: IncrementalResult): string[] {
  const ratio = r.finalFrozenMs / r.fullFrozenMs;
  return [
    `Iterative dump, ${r.mib} MiB process writing ${r.percent}% of its pages per second, median of ${r.runs} (frozen time, first seize to complete images):`,
    `  full dump                      ${r.fullFrozenMs.toFixed(1)} ms`,
    `  pre-dump 1, pre-dump 2         ${r.preDumpFrozenMs.map((x) => `${x.toFixed(1)} ms`).join(', ')} (the task runs between them)`,
    `  final dump after 2 pre-dumps   ${r.finalFrozenMs.toFixed(1)} ms (${r.finalPagesWritten} pages copied, ${r.finalPagesInParent} left in the parent images)`,
    `  ratio ${ratio.toFixed(3)} (target <= 0.10: ${ratio <= 0.1 ? 'met' : 'NOT met'})`,
  ];
}
