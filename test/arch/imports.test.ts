/**
 * The layering of src/, read from the source: every import points down the
 * layers of docs/architecture.md (or stays in its own layer), no module
 * imports itself back through others, no AsyncLocalStorage (state travels
 * in the dump and restore contexts), and ptrace is called only by
 * src/infect and src/sys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { ROOT, SRC, tsFiles } from './src-files.js';

/** Lowest first. Modules of one layer may import each other; a layer may import any layer below it. */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'version.ts', 'action-points.ts', 'caller.ts', 'fault.ts', 'node-start.ts', 'timeline.ts', 'heap.ts', 'builtins.ts'],
  // log.ts writes its file through sys/safe-fs.ts; nothing in sys/ logs.
  ['sys', 'log.ts', 'progress.ts'],
  ['proc', 'images'],
  ['infect'],
  ['kinds'],
  ['dump', 'restore'],
  ['api'],
  ['cli', 'rpc', 'crit'],
];



/** The top-level entry of src/ a file belongs to: "dump", "errors.ts", ... */
function topOf(file: string): string {
  return relative(SRC, file).split('/')[0] ?? '';
}

function layerOf(file: string): number {
  const top = topOf(file);
  const i = LAYERS.findIndex((l) => l.includes(top));
  assert.ok(i >= 0, `${relative(ROOT, file)}: src/${top} is in no layer of test/arch/imports.test.ts (add it where it belongs)`);
  return i;
}

/** Relative imports of a file (static, type-only, re-exports and dynamic import()), as absolute .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*'([^']+)'|import\(\s*'([^']+)'\s*\)|^import\s+'([^']+)'/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec?.startsWith('.')) continue;
    out.push(normalize(join(dirname(file), spec.replace(/\.js$/, '.ts'))));
  }
  return out;
}

const files = tsFiles();
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('every import of src/ points down a layer or stays in its own', () => {
  const bad: string[] = [];
  for (const [f, deps] of graph) {
    for (const d of deps) {
      if (layerOf(d) > layerOf(f)) bad.push(`${relative(SRC, f)} -> ${relative(SRC, d)}`);
    }
  }
  assert.deepEqual(bad, [], `imports pointing up a layer:\n${bad.join('\n')}`);
});

test('no import circle in src/', () => {
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (!graph.has(d)) continue;
      if (state.get(d) === 'open') circles.push([...stack.slice(stack.indexOf(d)), d].map((x) => relative(SRC, x)).join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  assert.deepEqual(circles, [], `import circles:\n${circles.join('\n')}`);
});

test('every relative import of src/ names a file that exists', () => {
  const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => !graph.has(d)).map((d) => `${relative(SRC, f)} -> ${relative(SRC, d)}`));
  assert.deepEqual(missing, []);
});

test('no AsyncLocalStorage: per-dump and per-restore state lives in the contexts', () => {
  const users = files.filter((f) => /AsyncLocalStorage|node:async_hooks/.test(readFileSync(f, 'utf8')));
  assert.deepEqual(users.map((f) => relative(SRC, f)), []);
});

test('no dynamic import() of a package or built-in: the bundle keeps it as import(), which fails once loaded from the code cache', () => {
  // bin/load-bundle.cjs runs the CommonJS bundle through vm.Script with cachedData; in Node 20 a
  // script made from a code cache loses its dynamic-import callback, and such an import() rejects
  // (a page server daemon never told its parent its port). Relative ones are inlined by the bundler.
  const bad: string[] = [];
  for (const f of files) {
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (/(?<!typeof )\bimport\(\s*['"`](?!\.)/.test(line) && !/^\s*(\/\/|\*)/.test(line)) bad.push(`${relative(SRC, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(bad, [], `dynamic import() of a non-relative module:\n${bad.join('\n')}`);
});

test('ptrace is called only by src/infect and src/sys', () => {
  const bad: string[] = [];
  for (const f of files) {
    const top = topOf(f);
    if (top === 'infect' || top === 'sys') continue;
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (/\bptrace[A-Z]\w*\s*\(/.test(line) && !/^\s*(\/\/|\*)/.test(line)) bad.push(`${relative(SRC, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(bad, [], `ptrace outside src/infect and src/sys:\n${bad.join('\n')}`);
});

test('the core reaches the task-state kinds only through the registry (kinds/index.ts)', () => {
  const taskKinds = join(SRC, 'kinds', 'task');
  const bad = [...graph]
    .filter(([f]) => !f.startsWith(join(SRC, 'kinds')))
    .flatMap(([f, deps]) => deps.filter((d) => d.startsWith(taskKinds + '/')).map((d) => `${relative(SRC, f)} -> ${relative(SRC, d)}`));
  assert.deepEqual(bad, [], `import kinds/index.ts instead:\n${bad.join('\n')}`);
});
