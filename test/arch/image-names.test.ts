/**
 * Image file names are made in one place, the image table
 * (src/images/table.ts: `imageFile(key, id)`, `imagePath(dir, key, id)`):
 * a name spelled anywhere else in src/ (`core-${pid}.img`, 'files.img',
 * 'stats-dump') drifts from CRIU's patterns unseen. This reads every
 * string of src/ and fails on one that is the name of a table kind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SRC, tsFiles } from './src-files.js';
import { kindByFileName } from '../../src/images/table.js';

/** Folders still spelling names, each with why. */
const NOT_YET: Readonly<Record<string, string>> = {};



/** Words in code that look like image file names; `${...}` parts stand for an id. */
const NAME = /[a-z0-9][a-z0-9_-]*(?:\$\{[^}]*\}[a-z0-9_-]*)*\.img\b|\b(?:stats-(?:dump|restore)|criu-ts-checksums|irmap-cache)\b|\\\.img\b/g;

/** The spelled image names of one file: "line: text". */
function spelledNames(file: string): string[] {
  const out: string[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
    const code = line.replace(/\s\/\/ .*$/, '');
    for (const m of code.matchAll(NAME)) {
      // A regular expression over file names (/^core-(\d+)\.img$/) spells one too.
      const name = m[0] === '\\.img' ? 'x.img' : m[0].replace(/\$\{[^}]*\}/g, '1');
      if (m[0] === '\\.img' || kindByFileName(name) !== undefined) out.push(`${i + 1}: ${m[0]}`);
    }
  });
  return out;
}

test('no image file name is spelled in src/ outside the image table', () => {
  const bad: string[] = [];
  for (const f of tsFiles()) {
    const rel = relative(SRC, f);
    if (rel === 'images/table.ts' || rel === 'images/messages.ts') continue;
    if (Object.keys(NOT_YET).some((dir) => rel.startsWith(dir))) continue;
    for (const s of spelledNames(f)) bad.push(`src/${rel}:${s}`);
  }
  assert.deepEqual(bad, [], `image file names spelled outside src/images/table.ts (use imageFile/imagePath, ctx.saveImage, ctx.image):\n${bad.join('\n')}`);
});

test('the folders still allowed to spell image names still do', () => {
  const done = Object.keys(NOT_YET).filter((dir) => tsFiles(join(SRC, dir)).every((f) => spelledNames(f).length === 0));
  assert.deepEqual(done, [], 'these folders spell no image name any more: take them off NOT_YET in test/arch/image-names.test.ts');
});
