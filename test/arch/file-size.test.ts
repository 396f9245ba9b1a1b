/**
 * House style: a source file of src/ stays within LIMIT lines; one that
 * grows past it becomes a folder (one file per part). The few still over
 * are listed here, each with the reason it is not split yet, and an entry
 * whose file has come back under the limit (or is gone) fails too, so the
 * list only shrinks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SRC, tsFiles } from './src-files.js';

const LIMIT = 400;

/** Files of src/ allowed over LIMIT, with why. */
const OVER: Readonly<Record<string, string>> = {
  'images/messages.ts': 'generated from the schemas by `npm run gen:types`, never edited by hand',
};



function linesOf(file: string): number {
  const text = readFileSync(file, 'utf8');
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

test(`every file of src/ has at most ${LIMIT} lines, but the listed ones`, () => {
  const over = tsFiles()
    .map((f) => ({ file: relative(SRC, f), lines: linesOf(f) }))
    .filter((x) => x.lines > LIMIT && OVER[x.file] === undefined)
    .map((x) => `src/${x.file}: ${x.lines} lines (split it into a folder, one file per part)`);
  assert.deepEqual(over, [], `files over ${LIMIT} lines:\n${over.join('\n')}`);
});

test('every file allowed over the limit is still there and still over it', () => {
  const stale = Object.keys(OVER)
    .filter((f) => !existsSync(join(SRC, f)) || linesOf(join(SRC, f)) <= LIMIT)
    .map((f) => `src/${f}: no longer over ${LIMIT} lines (take it off the list in test/arch/file-size.test.ts)`);
  assert.deepEqual(stale, []);
});
