/**
 * A verify difference: what it is, how it reads in one line, the collector
 * each check adds to, the field-by-field walk over two decoded messages,
 * and the verdict (refuse or warn).
 */
import { CriuTsError } from '../../errors.js';
import { logger } from '../../log.js';

const log = logger('verify');

export interface VerifyDifference {
  pid: number;
  tid?: number;
  field: string;
  dumped: string;
  restored: string;
}

/** A difference as one line: "task 12 thread 13: sigactions[10].flags: dumped 0x4000000, restored 0x0". */
export function describeDifference(d: VerifyDifference): string {
  const who = d.tid !== undefined && d.tid !== d.pid ? `task ${d.pid} thread ${d.tid}` : `task ${d.pid}`;
  return `${who}: ${d.field}: dumped ${d.dumped}, restored ${d.restored}`;
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return `0x${v.toString(16)}`;
  if (Buffer.isBuffer(v)) return v.length <= 16 ? `<${v.toString('hex')}>` : `<${v.length} bytes, ${v.subarray(0, 8).toString('hex')}...>`;
  if (v === undefined) return '(none)';
  if (typeof v === 'object') return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x));
  return String(v);
}

/**
 * Walk `dumped` (from the images) and compare every field `restored` also
 * has. Fields whose dotted path from the top is in `skip` are left out
 * (a top-level "flags" is the task's PF_* flags, not a sigaction's).
 */
export function diffValue(dumped: unknown, restored: unknown, path: string, skip: ReadonlySet<string>, out: (field: string, a: unknown, b: unknown) => void): void {
  if (restored === undefined || dumped === undefined) return;
  if (Buffer.isBuffer(dumped) || Buffer.isBuffer(restored)) {
    const a = Buffer.isBuffer(dumped) ? dumped : Buffer.alloc(0);
    const b = Buffer.isBuffer(restored) ? restored : Buffer.alloc(0);
    if (!a.equals(b)) out(path, dumped, restored);
    return;
  }
  if (Array.isArray(dumped)) {
    const r = Array.isArray(restored) ? restored : [];
    if (dumped.length !== r.length) {
      out(`${path}.length`, dumped.length, r.length);
      return;
    }
    dumped.forEach((x, i) => diffValue(x, r[i], `${path}[${i}]`, skip, out));
    return;
  }
  if (typeof dumped === 'object' && dumped !== null) {
    if (typeof restored !== 'object' || restored === null) {
      out(path, dumped, restored);
      return;
    }
    for (const [k, v] of Object.entries(dumped)) {
      const p = path === '' ? k : `${path}.${k}`;
      if (skip.has(p) || k === '_unknown_fields') continue;
      diffValue(v, (restored as Record<string, unknown>)[k], p, skip, out);
    }
    return;
  }
  if (dumped !== restored) out(path, dumped, restored);
}

export class Collector {
  readonly diffs: VerifyDifference[] = [];
  constructor(readonly pid: number) {}
  add(field: string, dumped: unknown, restored: unknown, tid?: number): void {
    this.diffs.push({ pid: this.pid, ...(tid === undefined ? {} : { tid }), field, dumped: show(dumped), restored: show(restored) });
  }
}

/** Act on the differences: refuse (throw, the restore then kills every task) or, with `warn`, log them. */
export function judge(diffs: readonly VerifyDifference[], mode: 'refuse' | 'warn'): void {
  if (diffs.length === 0) return;
  if (mode === 'warn') {
    for (const d of diffs) log.warn(`verify: ${describeDifference(d)}`);
    return;
  }
  // Refused: the error line says the first; the rest go to the log (-v3), so a user reads one line.
  for (const d of diffs) log.info(`verify: ${describeDifference(d)}`);
  const first = diffs[0] as VerifyDifference;
  const more = diffs.length > 1 ? ` (and ${diffs.length - 1} more difference(s), logged at -v3)` : '';
  throw new CriuTsError('ERESTORE', `restore --verify: ${describeDifference(first)}${more}`, { differences: diffs });
}
