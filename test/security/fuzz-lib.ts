/**
 * What the restore fuzzers share (restore-fuzz.test.ts over plain subjects,
 * restore-fuzz-ns.test.ts over trees in namespaces of their own): a seeded
 * PRNG, so a failing case replays from its seed, and the damage done to one
 * copy of a dump, one way per copy: a field of a decoded image set to an
 * edge value, an entry removed, doubled or swapped, a file removed or
 * truncated, a bit flipped; with `strings`, a string field (a mount point,
 * a device or host name) replaced by an empty, relative, climbing, huge or
 * control-character one.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync, truncateSync, unlinkSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readImage, writeImage } from '../../src/images/index.js';

import { int, type Rand } from '../lib/rng.js';
export { rng, int, type Rand } from '../lib/rng.js';
export function pick<T>(r: Rand, list: readonly T[]): T {
  const v = list[int(r, list.length)];
  if (v === undefined) throw new Error('pick from an empty list');
  return v;
}

type Leaf = { holder: Record<string, unknown> | unknown[]; key: string | number; value: unknown; path: string };
type ArrayRef = { arr: unknown[]; path: string };

const isScalar = (x: unknown, strings: boolean): boolean =>
  typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean' || (strings && typeof x === 'string');

/** Every number, bigint and boolean (and string, with `strings`) in a decoded entry, and every array, with where it sits. */
function walk(v: unknown, path: string, leaves: Leaf[], arrays: ArrayRef[], strings: boolean): void {
  if (Buffer.isBuffer(v) || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    arrays.push({ arr: v, path });
    v.forEach((x, i) => {
      if (isScalar(x, strings)) leaves.push({ holder: v, key: i, value: x, path: `${path}[${i}]` });
      else walk(x, `${path}[${i}]`, leaves, arrays, strings);
    });
    return;
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (isScalar(x, strings)) leaves.push({ holder: v as Record<string, unknown>, key: k, value: x, path: `${path}.${k}` });
    else walk(x, `${path}.${k}`, leaves, arrays, strings);
  }
}

function edgeString(r: Rand, v: string): string {
  const choices = ['', '/', '.', '..', '../../../../../../etc', `${v}/../../..`, `/tmp/../${v}`, `${v}\n`, `${v}\u0000x`, 'x'.repeat(int(r, 2) === 0 ? 16 : 5000), `${v}x`, v.slice(0, -1), '/proc/self/root', 'lo', 'eth0'];
  return pick(r, choices);
}

function edgeValue(r: Rand, v: number | bigint | boolean | string, extra: readonly number[]): number | bigint | boolean | string {
  if (typeof v === 'string') return edgeString(r, v);
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'bigint') {
    const choices = [0n, 1n, v + 1n, v - 1n, v ^ (1n << BigInt(int(r, 64))), (1n << 64n) - 1n, 1n << 63n, 1n << 32n, BigInt(int(r, 1 << 30))];
    return BigInt.asUintN(64, pick(r, choices));
  }
  const choices = [0, 1, v + 1, v - 1, v ^ (1 << int(r, 31)), 0x7fffffff, 0xffffffff, -1, int(r, 1 << 20), ...extra];
  return pick(r, choices);
}

export interface MutateOptions {
  /** Files the damage goes to most of the time (`preferShare` of the cases), when the dump has any. */
  prefer?: (file: string) => boolean;
  preferShare?: number;
  /** Mutate string fields too. */
  strings?: boolean;
  /** More values a number may be set to (e.g. pids of live processes outside the tree: ours, init). */
  numbers?: readonly number[];
}

/** Damage one image of `dir` in one way; returns what was done (replays and failure messages name it). */
export function mutate(dir: string, r: Rand, opts: MutateOptions = {}): string {
  const files = readdirSync(dir).filter((f) => f !== 'criu-ts-checksums.img' && !f.startsWith('stats-'));
  const preferred = opts.prefer === undefined ? [] : files.filter(opts.prefer);
  for (let attempt = 0; attempt < 20; attempt++) {
    const file = pick(r, preferred.length > 0 && r() < (opts.preferShare ?? 0.75) ? preferred : files);
    const path = join(dir, file);
    const how = r();
    if (how < 0.04) {
      unlinkSync(path);
      return `${file}: removed`;
    }
    if (how < 0.1) {
      const size = statSync(path).size;
      const to = int(r, size);
      truncateSync(path, to);
      return `${file}: truncated to ${to} of ${size} bytes`;
    }
    if (how < 0.18 || file.startsWith('pages-')) {
      const b = readFileSync(path);
      if (b.length === 0) continue;
      const at = int(r, b.length);
      const bit = int(r, 8);
      b[at] = (b[at] ?? 0) ^ (1 << bit);
      writeFileSync(path, b);
      return `${file}: bit ${bit} of byte ${at} flipped`;
    }
    let img;
    try {
      img = readImage(path);
    } catch {
      continue;
    }
    const leaves: Leaf[] = [];
    const arrays: ArrayRef[] = [{ arr: img.entries, path: 'entries' }];
    img.entries.forEach((e, i) => walk(e, `[${i}]`, leaves, arrays, opts.strings === true));
    let what: string;
    if (how < 0.8 && leaves.length > 0) {
      const leaf = pick(r, leaves);
      const to = edgeValue(r, leaf.value as number | bigint | boolean | string, opts.numbers ?? []);
      (leaf.holder as Record<string | number, unknown>)[leaf.key] = to;
      what = `${leaf.path}: ${JSON.stringify(String(leaf.value)).slice(0, 80)} -> ${JSON.stringify(String(to)).slice(0, 80)}`;
    } else {
      const withItems = arrays.filter((a) => a.arr.length > 0);
      if (withItems.length === 0) continue;
      const a = pick(r, withItems);
      const i = int(r, a.arr.length);
      const op = int(r, 3);
      if (op === 0) {
        a.arr.splice(i, 1);
        if (a.arr === img.entries) img.extras.splice(i, 1);
        what = `${a.path}[${i}] removed`;
      } else if (op === 1) {
        a.arr.splice(i, 0, a.arr[i]);
        if (a.arr === img.entries) img.extras.splice(i, 0, img.extras[i]);
        what = `${a.path}[${i}] doubled`;
      } else {
        const j = int(r, a.arr.length);
        [a.arr[i], a.arr[j]] = [a.arr[j], a.arr[i]];
        if (a.arr === img.entries) [img.extras[i], img.extras[j]] = [img.extras[j], img.extras[i]];
        what = `${a.path}[${i}] and [${j}] swapped`;
      }
    }
    try {
      writeImage(path, img.kind.name, img.entries, img.extras);
    } catch {
      continue; // the value does not fit the field's type: the encoder refuses it, so no image could carry it
    }
    return `${file}: ${what}`;
  }
  return 'nothing (no mutable image found)';
}

/** A task we may kill: one of ours (restored trees are reparented to us, the subreaper), never someone else's. */
export function isOurDescendant(pid: number): boolean {
  let cur = pid;
  for (let depth = 0; depth < 32; depth++) {
    let status: string;
    try {
      status = readFileSync(`/proc/${cur}/status`, 'latin1');
    } catch {
      return false;
    }
    const ppid = Number(/\nPPid:\s+(\d+)/.exec(status)?.[1] ?? 0);
    if (ppid === process.pid) return true;
    if (ppid <= 1) return false;
    cur = ppid;
  }
  return false;
}

/** Every live process below us (the restored trees, reparented to us, and anything they left). */
export function ourDescendants(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid !== process.pid && isOurDescendant(pid)) out.push(pid);
  }
  return out;
}

/** Pids the (possibly damaged) dump names, for cleaning up after a case. */
export function pidsIn(dir: string, fallback: readonly number[]): number[] {
  try {
    const e = readImage(join(dir, 'pstree.img')).entries as { pid?: number; threads?: number[] }[];
    return [...new Set([...fallback, ...e.flatMap((x) => [x.pid ?? 0, ...(x.threads ?? [])]).filter((p) => p > 1 && p < 1 << 22)])];
  } catch {
    return [...fallback];
  }
}

/** The lines of a failed run's stderr that are not the restore's own warnings (default -v2): exactly one, an Error, is expected. */
export function errorLines(stderr: string): string[] {
  return stderr.trim().split('\n').filter((l) => l.trim() !== '' && !/^\(\d+\.\d+\) Warn /.test(l));
}

/** A refused case: exactly one Error line (warnings aside), no stack trace, no internal error. */
export function assertOneErrorLine(label: string, stderr: string): void {
  const lines = errorLines(stderr);
  assert.equal(lines.length, 1, `${label}: expected one error line, got:\n${stderr}`);
  assert.match(lines[0] ?? '', /^Error/, `${label}: ${stderr}`);
  assert.doesNotMatch(stderr, /\n\s+at /, `${label}: a stack trace`);
  assert.doesNotMatch(stderr, /EINTERNAL|TypeError|RangeError|ReferenceError|Cannot read prop/, `${label}: an internal error`);
}
