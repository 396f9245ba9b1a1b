#!/usr/bin/env node
// Bundles each command-line entry point (dist/src/cli/main.js,
// dist/src/crit/main.js) into one file each under dist/bundle/: loading one
// file instead of ~150 ES modules takes tens of milliseconds off every
// criu-ts / crit-ts run. koffi stays external (it loads a native addon).
// CommonJS, so that bin/load-bundle.cjs can run it through vm.Script with a
// code cache (an ES module cannot take one on Node 20); import.meta.url
// becomes the bundle's own file URL. bin/* fall back to the unbundled
// modules when the bundle is missing. A code cache of an older bundle is
// removed here (it would be ignored anyway: it names the file it was made from).
import { readdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const [name, entry] of [['criu-ts', 'dist/src/cli/main.js'], ['crit-ts', 'dist/src/crit/main.js']]) {
  await build({
    entryPoints: [join(root, entry)],
    outfile: join(root, 'dist', 'bundle', `${name}.cjs`),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['koffi'],
    // Minified (whitespace, syntax, local names): 1.34 -> 0.72 MB, and every run reads the bundle and
    // hands V8 its text (docs/performance.md, "Start-up, session 13"). Nothing depends on a function's
    // or class's own name (errors set theirs, loggers name their prefix). A stack trace then names
    // minified functions: `npx tsc` alone (dist/src newer than the bundle) runs the modules as they are.
    minify: true,
    // ASCII only (esbuild's default, said here because bin/load-bundle.cjs relies on it): non-ASCII text is
    // escaped, so the loader reads the file as latin1, which costs less than decoding UTF-8.
    charset: 'ascii',
    logLevel: 'warning',
    define: { 'import.meta.url': '__bundleUrl' },
    // One function expression, as bin/load-bundle.cjs compiles it: the text read from the file is the script's source
    // itself (a wrapper added at load would make V8 hold a second 1.2 MB copy).
    banner: { js: "(function (exports, require, module, __filename, __dirname) {const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
    footer: { js: '\n})' },
  });
}
for (const f of readdirSync(join(root, 'dist', 'bundle'))) {
  if (f.endsWith('.cache') || f.endsWith('.mjs')) rmSync(join(root, 'dist', 'bundle', f), { force: true });
}
