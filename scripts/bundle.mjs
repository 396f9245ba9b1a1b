#!/usr/bin/env node
// Bundles each command-line entry point (dist/src/cli/main.js,
// dist/src/crit/main.js) into one file each under dist/bundle/: loading one
// file instead of ~150 ES modules takes tens of milliseconds off every
// criu-ts / crit-ts run. koffi stays external (it loads a native addon).
// bin/* fall back to the unbundled modules when the bundle is missing.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const [name, entry] of [['criu-ts', 'dist/src/cli/main.js'], ['crit-ts', 'dist/src/crit/main.js']]) {
  await build({
    entryPoints: [join(root, entry)],
    outfile: join(root, 'dist', 'bundle', `${name}.mjs`),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['koffi'],
    logLevel: 'warning',
    // CommonJS dependencies bundled into ESM need a require().
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
}
