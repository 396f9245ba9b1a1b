/**
 * The benchmark report: one row per case and operation, ours beside its
 * same-run baseline, as an aligned text table (terminal) or Markdown
 * (README), plus the verdict against the acceptance targets.
 */
import type { CaseResult, CliResult, Measure } from './cases.js';

const s = (x: number): string => (Number.isFinite(x) ? x < 1 ? `${(x * 1000).toFixed(1)} ms` : `${x.toFixed(2)} s` : '-');
const gbps = (bytes: number, secs: number): string => (bytes > 0 && Number.isFinite(secs) && secs > 0 ? (bytes / secs / 1e9).toFixed(2) : '-');

export const HEADER = ['case', 'op', 'runs', 'criu-ts', 'GB/s', 'baseline', 'GB/s', 'ratio', 'baseline is'];

function row(c: CaseResult, op: 'dump' | 'restore', m: Measure, what: string): string[] {
  if (m.note !== undefined) return [c.name, op, String(c.runs), m.note, '', s(m.baseS), '', '', what];
  return [
    c.name, op, String(c.runs), s(m.oursS), gbps(m.bytes, m.oursS), s(m.baseS), gbps(m.bytes, m.baseS),
    Number.isFinite(m.oursS / m.baseS) ? `${(m.oursS / m.baseS).toFixed(2)}x` : '-', what,
  ];
}

export function rows(cases: readonly CaseResult[]): string[][] {
  return cases.flatMap((c) => [row(c, 'dump', c.dump, c.dumpBaseline), row(c, 'restore', c.restore, c.restoreBaseline)]);
}

export function textTable(header: readonly string[], body: readonly string[][]): string {
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function markdownTable(header: readonly string[], body: readonly string[][]): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...body.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export function cliLines(c: CliResult): string[] {
  return [
    `CLI wall time, ${c.mib} MiB process, median of ${c.runs} (bin/criu-ts, node start included):`,
    `  dump    ${s(c.dumpS)}   (target < 150 ms: ${c.dumpS < 0.15 ? 'met' : 'missed'})`,
    `  restore ${s(c.restoreS)}   (target < 150 ms: ${c.restoreS < 0.15 ? 'met' : 'missed'})`,
    `  of which node start alone (node -e 0): ${s(c.nodeStartS)}; criu-ts --version: ${s(c.loadS)}`,
  ];
}

/** The acceptance targets of the benchmark issue, checked against the figures. */
export function verdicts(cases: readonly CaseResult[], smallMib: number, bigMib: number): string[] {
  const out: string[] = [];
  const big = cases.find((c) => c.name === `${bigMib} MiB process`);
  const small = cases.find((c) => c.name === `${smallMib} MiB process`);
  const within = (m: Measure, limit: number): string =>
    `${(m.oursS / m.baseS).toFixed(2)}x of baseline (target <= ${limit}x: ${m.oursS / m.baseS <= limit ? 'met' : 'missed'})`;
  if (big) {
    out.push(`${big.name} dump:    ${within(big.dump, 1.2)}`);
    const rel = big.dump.releaseS;
    if (rel !== undefined) {
      const core = big.dump.oursS - rel;
      out.push(`  (of its ${s(big.dump.oursS)}, ${s(rel)} is killing the task and waiting for its memory to be freed;`);
      out.push(`   up to complete images it is ${s(core)}, ${(core / big.dump.baseS).toFixed(2)}x of baseline)`);
    }
    out.push(`${big.name} restore: ${within(big.restore, 1.2)}`);
  }
  if (small) {
    out.push(`${small.name} dump:    ${s(small.dump.oursS)} via the API (target < 150 ms: ${small.dump.oursS < 0.15 ? 'met' : 'missed'})`);
    out.push(`${small.name} restore: ${s(small.restore.oursS)} via the API (target < 150 ms: ${small.restore.oursS < 0.15 ? 'met' : 'missed'})`);
  }
  return out;
}
