/**
 * Where a lazy restore's time goes before the task's first instruction
 * (`npm run bench -- --only lazy-timeline`): one dump of
 * bench/c/lazy-first (N MiB), then runs of `restore({lazyPages})` in this
 * process and of `criu-ts restore -d --lazy-pages` (the CLI), each with a
 * lazy-pages daemon started and listening before the clock starts, with
 * the restore's timeline on (src/timeline.ts): each phase's end, in ms
 * from the restore's start (the API call; for the CLI, the moment it is
 * spawned), and the calls injected into the task by then. The last row is
 * the subject's own clock when it first runs. The daemon's own moments
 * (its timeline, on the same wall clock) are rows too, "lazy-pages: ...":
 * when the restore connected, each task handed over, the restore done;
 * its first faults are counted apart (they come in some runs only). Not
 * its first push: the subject is killed as soon as it has run, so the
 * push meets a task that is going (the daemon's own timeline has it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../src/api/index.js';
import { timelineOff, timelineOn, type Mark } from '../src/timeline.js';
import { buildHelper, startHeld, killHeld, killRestored, shmDir, removeDir, median, sleep, status, repoRoot } from './helpers.js';
import { dumpSubject, firstRunAfter, realNs, startDaemon } from './lazy.js';

interface Run { marks: { what: string; ms: number; calls: number; cpu: number }[]; first: number; faultsBefore?: number }

/** The daemon's marks (ms from `t0`, no calls nor CPU of ours), but its faults; and how many faults it began before `first`. */
function daemonMarks(file: string, t0: bigint, first: number): { marks: Run['marks']; faultsBefore: number } {
  if (!existsSync(file)) return { marks: [], faultsBefore: 0 };
  const rec = JSON.parse(readFileSync(file, 'utf8').trim().split('\n')[0] ?? '{}') as { origin: number; marks: Mark[] };
  const all = relative(rec.marks, rec.origin, t0).filter((m) => m.what.startsWith('lazy-pages:'));
  const faults = all.filter((m) => / at 0x/.test(m.what));
  return {
    marks: all.filter((m) => !m.what.startsWith('lazy-pages: fault') && !m.what.startsWith('lazy-pages: first push')).map((m) => ({ ...m, calls: NaN, cpu: NaN })),
    faultsBefore: faults.filter((m) => m.ms < first).length,
  };
}

/** Each mark as ms from `t0` (ns on the wall clock), given the recording process's time origin (ms since the epoch). */
function relative(marks: readonly Mark[], origin: number, t0: bigint): Run['marks'] {
  const t0ms = Number(t0) / 1e6;
  const cpu0 = marks[0]?.cpu ?? 0;
  return marks.map((m) => ({ what: m.what, ms: origin + m.ms - t0ms, calls: m.calls, cpu: m.cpu - cpu0 }));
}

export interface TimelineResult { mib: number; runs: number; library: string[]; cli: string[] }

export async function lazyTimeline(mib: number, runs: number): Promise<TimelineResult> {
  const exe = buildHelper('lazy-first');
  const dir = shmDir(`lazy-timeline-${mib}m`);
  const img = join(dir, 'img');
  const record = join(dir, 'record');
  const lib: Run[] = [];
  const cli: Run[] = [];
  try {
    status(`lazy timeline, ${mib} MiB: dump`);
    await dumpSubject(exe, mib, dir, img, record);
    // Run 0 of each is a warm-up (JIT, page cache), not counted.
    for (let i = 0; i <= runs; i++) {
      status(`lazy timeline, ${mib} MiB: library run ${i}/${runs}`);
      writeFileSync(record, Buffer.alloc(4096));
      const dtl = join(dir, 'daemon-timeline.json');
      rmSync(dtl, { force: true });
      let { gone } = await startDaemon(img, dtl);
      timelineOn();
      let t0 = realNs();
      const r = await restore({ imagesDir: img, progress: false, lazyPages: true });
      const marks = timelineOff();
      const first = await firstRunAfter(record, t0);
      await killRestored(r.pids);
      await Promise.race([gone, sleep(30_000)]);
      const d = daemonMarks(dtl, t0, first);
      if (i > 0) lib.push({ marks: [...relative(marks, performance.timeOrigin, t0), ...d.marks], first, faultsBefore: d.faultsBefore });

      status(`lazy timeline, ${mib} MiB: CLI run ${i}/${runs}`);
      writeFileSync(record, Buffer.alloc(4096));
      ({ gone } = await startDaemon(img));
      const file = join(dir, 'timeline.json');
      rmSync(file, { force: true });
      const pidfile = join(dir, 'pid');
      rmSync(pidfile, { force: true });
      t0 = realNs();
      const c = spawnSync(process.execPath, [join(repoRoot(), 'bin', 'criu-ts'), 'restore', '-D', img, '-d', '--lazy-pages', '--pidfile', pidfile],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CRIU_TS_TIMELINE: file } });
      if (c.status !== 0) throw new Error(`criu-ts restore --lazy-pages: ${c.stderr.toString().trim()}`);
      const cf = await firstRunAfter(record, t0);
      await killRestored([Number(readFileSync(pidfile, 'utf8'))]);
      await Promise.race([gone, sleep(30_000)]);
      const rec = JSON.parse(readFileSync(file, 'utf8').trim().split('\n')[0] ?? '{}') as { origin: number; marks: Mark[] };
      // The CLI's process starts before its first mark: Node's own start.
      if (i > 0) cli.push({ marks: [{ what: 'node process started', ms: rec.origin - Number(t0) / 1e6, calls: 0, cpu: 0 }, ...relative(rec.marks, rec.origin, t0)], first: cf });
    }
  } finally {
    removeDir(dir);
  }
  return { mib, runs, library: table(lib), cli: table(cli) };
}

/** Rows: each mark of the first run (by name: the same in every run), median ms from the start, ms since the row before, injected calls. */
function table(runs: readonly Run[]): string[] {
  const first = runs[0];
  if (!first) return [];
  const med = (what: string, f: (m: Run['marks'][number]) => number): number => median(runs.map((r) => { const m = r.marks.find((x) => x.what === what); return m ? f(m) : NaN; }));
  const rows = first.marks.map((m) => ({ what: m.what, ms: med(m.what, (x) => x.ms), calls: med(m.what, (x) => x.calls), cpu: med(m.what, (x) => x.cpu) }));
  const faulted = runs.filter((r) => (r.faultsBefore ?? 0) > 0).length;
  const faults = first.faultsBefore === undefined ? '' : ` (the daemon began serving a fault before it in ${faulted} of ${runs.length} runs)`;
  rows.push({ what: `FIRST INSTRUCTION (subject's clock)${faults}`, ms: median(runs.map((r) => r.first)), calls: NaN, cpu: NaN });
  rows.sort((a, b) => a.ms - b.ms);
  const out = ['| ms from start | step | our CPU in step | injected calls | moment |', '|---:|---:|---:|---:|---|'];
  let prev = 0;
  let prevCpu = 0;
  for (const r of rows) {
    const cpu = Number.isNaN(r.cpu) ? '' : (r.cpu - prevCpu).toFixed(1);
    out.push(`| ${r.ms.toFixed(1)} | ${(r.ms - prev).toFixed(1)} | ${cpu} | ${Number.isNaN(r.calls) ? '' : r.calls} | ${r.what} |`);
    prev = r.ms;
    if (!Number.isNaN(r.cpu)) prevCpu = r.cpu;
  }
  return out;
}

export function timelineLines(r: TimelineResult): string[] {
  return [
    `Lazy restore of a ${r.mib} MiB process, timeline, median of ${r.runs} runs (ms from the restore's start):`,
    '', 'restore({lazyPages}) in this Node process:', '', ...r.library,
    '', '`criu-ts restore -d --lazy-pages` (from its spawn):', '', ...r.cli,
  ];
}
