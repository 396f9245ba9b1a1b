/**
 * `npm run bench`: dump and restore of processes with 1 MiB, 256 MiB and
 * 1 GiB of touched memory, a 100-process tree and a 1000-thread process,
 * each beside a plain-C baseline measured in the same run, plus the CLI's
 * wall time for the small case, and the final freeze of an iterative dump
 * (bench/incremental.ts) beside a full dump's. Prints progress on a terminal and the
 * table always; writes the Markdown table to build/bench/results.md.
 *
 * and the lazy restore's first instruction and memory-in-place beside a
 * plain restore's (bench/lazy.ts), and the peak RSS of criu-ts's CLI
 * beside a plain cp of the same images (bench/rss.ts).
 *
 * usage: node dist/bench/run.js [--quick] [--markdown] [--criu PATH] [--only TEXT] [--help]
 *   --quick     fewer runs and no 1 GiB case (a smoke test, about 20 s)
 *   --criu PATH (or CRIU_BIN=PATH) compare with that CRIU binary instead of
 *               the plain-C baselines: both tools through their CLIs, turn
 *               about, with peak RSS (bench/vs-criu.ts)
 *   --only TEXT without --criu: incremental, lazy, lazy-timeline (where a lazy restore's time goes, bench/lazy-timeline.ts) or rss (peak RSS, bench/rss.ts) only; with --criu: only
 *               the cases whose name holds TEXT ("1 MiB", "thread", "check")
 * A full run takes about 2 minutes.
 *   --markdown  print the table as Markdown
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { setLogLevel } from '../src/log.js';
import { cliCase, memoryCase, threadsCase, treeCase, type CaseResult } from './cases.js';
import { cleanupAll, hasGcc, repoRoot, statusDone } from './helpers.js';
import { HEADER, cliLines, markdownTable, rows, textTable, verdicts } from './table.js';
import { incrementalCase, incrementalLines } from './incremental.js';
import { lazyCase, lazyLines } from './lazy.js';
import { lazyTimeline, timelineLines } from './lazy-timeline.js';
import { rssCases, rssLines } from './rss.js';
import { VS_HEADER, criuBinFrom, oursBin, runVsCriu, vsRows } from './vs-criu.js';

const SMALL_MIB = 1;
const MID_MIB = 256;
const BIG_MIB = 1024;

function machine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `Linux ${release()} x86_64, ${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

const USAGE = 'usage: npm run bench -- [--quick] [--markdown] [--criu PATH] [--only TEXT]';

/** The first word of `argv` that is not an option of ours (or the value of one), if any. */
function unknownArg(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--criu' || a === '--only') {
      if (argv[i + 1] === undefined) return `${a} (it needs a value)`;
      i++;
    } else if (a !== '--quick' && a !== '--markdown') return a;
  }
  return undefined;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`${USAGE}\n(see the head of bench/run.ts and README.md, Benchmarks)`);
    return 0;
  }
  const bad = unknownArg(argv);
  if (bad !== undefined) {
    console.error(`criu-ts bench: unknown option ${bad}; ${USAGE}`);
    return 1;
  }
  const quick = argv.includes('--quick');
  const markdown = argv.includes('--markdown');
  if (process.getuid?.() !== 0) {
    console.error('criu-ts bench: run as root (ptrace, clone3 with set_tid)');
    return 1;
  }
  if (!hasGcc()) {
    console.error('criu-ts bench: gcc is needed to build the benchmark subjects (apt-get install gcc)');
    return 1;
  }
  setLogLevel(1); // errors only: the table is the output
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      statusDone();
      cleanupAll();
      process.exit(130);
    });
  }
  const started = Date.now();
  const criu = criuBinFrom(argv);
  if (criu !== undefined) return vsCriu(criu, quick, markdown, started);
  // --only incremental|lazy: just issue 15's two figures (iterative freeze, lazy restore), printed.
  const only = argv[argv.indexOf('--only') + 1];
  if (argv.includes('--only')) {
    const out: string[] = [];
    if (only === 'incremental') out.push(...incrementalLines(await incrementalCase(quick ? MID_MIB : BIG_MIB, 1, quick ? 1 : 3)));
    else if (only === 'lazy') out.push(...lazyLines(await lazyCase(quick ? MID_MIB : BIG_MIB, quick ? 1 : 3)));
    else if (only === 'lazy-timeline') out.push(...timelineLines(await lazyTimeline(quick ? MID_MIB : BIG_MIB, quick ? 2 : 5)));
    else if (only === 'rss') out.push(...rssLines(await rssCases(quick)));
    else throw new Error(`--only ${only ?? ''}: incremental, lazy, lazy-timeline or rss`);
    statusDone();
    console.log([...out, `load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`, `(${((Date.now() - started) / 1000).toFixed(0)} s)`].join('\n'));
    return 0;
  }
  const cases: CaseResult[] = [];
  cases.push(await memoryCase(SMALL_MIB, quick ? 3 : 5));
  cases.push(await memoryCase(MID_MIB, quick ? 1 : 5));
  if (!quick) cases.push(await memoryCase(BIG_MIB, 5));
  cases.push(await treeCase(100, quick ? 1 : 3));
  cases.push(await threadsCase(1000, quick ? 1 : 3));
  const cli = await cliCase(SMALL_MIB, quick ? 3 : 5);
  const incr = await incrementalCase(quick ? MID_MIB : BIG_MIB, 1, quick ? 1 : 3);
  const lazy = await lazyCase(quick ? MID_MIB : BIG_MIB, quick ? 1 : 3);
  const rss = await rssCases(quick);
  statusDone();

  const body = rows(cases);
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const lines = [
    `criu-ts benchmark, ${when} UTC, ${machine()}`,
    'images and baseline files on /dev/shm; times are medians; ratio = criu-ts / baseline',
    `load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (other work on the machine skews the figures)`,
    '',
    markdown ? markdownTable(HEADER, body) : textTable(HEADER, body),
    '',
    ...cliLines(cli),
    '',
    ...incrementalLines(incr),
    '',
    ...lazyLines(lazy),
    '',
    ...rssLines(rss),
    '',
    'targets:',
    ...verdicts(cases, SMALL_MIB, BIG_MIB).map((l) => `  ${l}`),
    '',
    `(${((Date.now() - started) / 1000).toFixed(0)} s)`,
  ];
  console.log(lines.join('\n'));
  if (quick) return 0; // a smoke test: keep the last full results
  const outDir = join(repoRoot(), 'build', 'bench');
  mkdirSync(outDir, { recursive: true });
  // README-ready: the table, then the CLI figures and the verdicts as a text block.
  writeFileSync(join(outDir, 'results.md'), [
    `${when} UTC, ${machine()}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`, '',
    markdownTable(HEADER, body), '', '```text', ...cliLines(cli), '', ...incrementalLines(incr), '', ...lazyLines(lazy), '', ...rssLines(rss), '', ...verdicts(cases, SMALL_MIB, BIG_MIB), '```', '',
  ].join('\n'));
  writeFileSync(join(outDir, 'results.json'), JSON.stringify({ when, machine: machine(), cases, cli, incremental: incr, lazy, rss }, null, 2));
  return 0;
}

async function vsCriu(criu: string, quick: boolean, markdown: boolean, started: number): Promise<number> {
  const o = process.argv.indexOf('--only');
  const only = o >= 0 ? process.argv[o + 1] : undefined;
  const cases = await runVsCriu({ ours: oursBin(), criu }, quick, only);
  statusDone();
  const body = vsRows(cases);
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const head = [
    `criu-ts beside CRIU (${criu}), ${when} UTC, ${machine()}`,
    'images on /dev/shm; medians (min–max); ratio = criu-ts / CRIU, both through their command lines (process start included);',
    'RPC: one `swrk` per request (as runc drives CRIU), from its start to its answer; the library column is criu-ts called',
    'in this Node process; peak RSS is the largest ru_maxrss of the CLI and RPC runs',
    `load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (other work on the machine skews the figures)`,
  ];
  console.log([...head, '', markdown ? markdownTable(VS_HEADER, body) : textTable(VS_HEADER, body), '', `(${((Date.now() - started) / 1000).toFixed(0)} s)`].join('\n'));
  if (quick || only !== undefined) return 0; // keep the last full results
  const outDir = join(repoRoot(), 'build', 'bench');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'vs-criu.md'), [...head, '', markdownTable(VS_HEADER, body), ''].join('\n'));
  writeFileSync(join(outDir, 'vs-criu.json'), JSON.stringify({ when, machine: machine(), criu, cases }, null, 2));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    statusDone();
    console.error(`criu-ts bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 1;
  },
);
