/**
 * proc/read.ts: text and links from /proc decoded as UTF-8, the encoding
 * images give strings; a link target that is not UTF-8 refused in one line.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readProcLink, readProcText } from '../../src/proc/read.js';
import { CriuTsError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'criu-ts-read-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a link to a file named in UTF-8 reads back as the same name', () => {
  const name = join(dir, 'fïle-é-😀.txt');
  const fd = openSync(name, 'w');
  try {
    assert.equal(readProcLink(process.pid, `/proc/self/fd/${fd}`), name);
  } finally {
    closeSync(fd);
  }
});

test('a link whose target is not valid UTF-8 is refused, naming the link', () => {
  const name = Buffer.concat([Buffer.from(`${dir}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]);
  const fd = openSync(name, 'w');
  try {
    assert.throws(() => readProcLink(process.pid, `/proc/self/fd/${fd}`), (e: unknown) =>
      e instanceof CriuTsError && e.code === 'EUNSUPPORTED' && e.message.includes(`/proc/self/fd/${fd}`) && e.message.includes('not valid UTF-8'));
  } finally {
    closeSync(fd);
  }
});

test('text with UTF-8 names (maps of a file named so) is decoded as UTF-8', () => {
  const name = join(dir, 'mäp-ü.txt');
  const fd = openSync(name, 'w');
  try {
    // Our own fdinfo has no name; our maps has none of this file either: its fd link is the text we can control.
    assert.ok(readProcText(process.pid, `/proc/self/fdinfo/${fd}`).includes('flags:'));
    assert.equal(readProcLink(process.pid, `/proc/self/fd/${fd}`), name);
  } finally {
    closeSync(fd);
  }
});
