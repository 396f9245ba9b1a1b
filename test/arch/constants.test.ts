/**
 * Kernel constants (syscall, ioctl and flag values) are declared once, in
 * src/sys (by topic: fcntl.ts, signals.ts, mman.ts, socket.ts, errno.ts,
 * ioctl.ts, ...), and CRIU's image field values in src/images/flags.ts:
 * a value declared twice can drift apart unseen. This reads every
 * `const NAME = <number>` of src/ and fails on one that src/sys or
 * images/flags.ts already exports, and on a name declared with the same
 * value in two files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SRC, tsFiles } from './src-files.js';

/** Folders still declaring their own, each with why. */
const NOT_YET: Readonly<Record<string, string>> = {};



const DECL = /^(export )?const ([A-Z][A-Z0-9_]+) = (-?(?:0x[0-9a-fA-F]+|0o[0-7]+|\d+)n?);/gm;

interface Decl { file: string; name: string; value: string; exported: boolean }

function declsOf(file: string): Decl[] {
  return [...readFileSync(file, 'utf8').matchAll(DECL)].map((m) => ({
    file: relative(SRC, file), name: m[2] ?? '', value: (m[3] ?? '').replace(/n$/, ''), exported: m[1] !== undefined,
  }));
}

const all = tsFiles().filter((f) => !relative(SRC, f).startsWith('images/messages')).flatMap(declsOf);
const isHome = (d: Decl): boolean => d.file.startsWith('sys/') || d.file === 'images/flags.ts';
const allowed = (d: Decl): boolean => Object.keys(NOT_YET).some((dir) => d.file.startsWith(dir));
const homes = new Map(all.filter((d) => isHome(d) && d.exported).map((d) => [d.name, d]));

test('no constant of src/sys or images/flags.ts is declared again elsewhere', () => {
  const bad = all
    .filter((d) => !isHome(d) && !allowed(d) && homes.has(d.name))
    .map((d) => `src/${d.file}: ${d.name} (import it from src/${homes.get(d.name)?.file})`);
  assert.deepEqual(bad, [], bad.join('\n'));
});

test('no constant is declared with the same value in two files (it belongs in src/sys)', () => {
  const byKey = new Map<string, Decl[]>();
  for (const d of all) {
    if (allowed(d)) continue;
    const k = `${d.name}=${BigInt(d.value)}`;
    byKey.set(k, [...(byKey.get(k) ?? []), d]);
  }
  const bad = [...byKey].filter(([, ds]) => new Set(ds.map((d) => d.file)).size > 1).map(([k, ds]) => `${k}: ${ds.map((d) => `src/${d.file}`).join(', ')}`);
  // Inside src/sys, two syscall numbers still live next to their one user (safe-fs and probe: openat2).
  const known = ['NR_OPENAT2=437'];
  assert.deepEqual(bad.filter((b) => !known.some((k) => b.startsWith(`${k}:`))), [], bad.join('\n'));
});

test('the folders still allowed their own constants still declare some of src/sys', () => {
  const done = Object.keys(NOT_YET).filter((dir) => !all.some((d) => d.file.startsWith(dir) && homes.has(d.name)));
  assert.deepEqual(done, [], 'these folders declare no constant of src/sys any more: take them off NOT_YET in test/arch/constants.test.ts');
});
