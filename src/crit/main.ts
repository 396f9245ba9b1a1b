/**
 * crit-ts: CRIU's image tool (crit) in TypeScript. Same commands, same
 * output bytes as crit 4.2: decode, encode, show, info, x. Errors are one
 * line on stderr naming the file and byte offset, exit status 1.
 */
import { readFileSync, writeSync } from 'node:fs';
import { describeError, isCriuTsError, CriuTsError } from '../errors.js';
import { decodeImage, iterateImage, writeFileNoFollow } from '../images/index.js';
import { imageBytesToJsonText, jsonTextToImageBytes, stringifyPy } from '../images/json/index.js';
import { EXPLORERS } from './explore.js';
import { parseArgs, USAGE } from './args.js';
import type { CritArgs } from './args.js';

const VERSION = '4.2';

function readInput(path: string | undefined): { data: Buffer; name: string } {
  if (path === undefined || path === '-') return { data: readFileSync(0), name: '<stdin>' };
  try {
    return { data: readFileSync(path), name: path };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CriuTsError('ENOIMAGE', `${path}: no such file`, { file: path });
    throw new CriuTsError('EIMAGE', `${path}: cannot read: ${(e as Error).message}`, { file: path, offset: 0 }, e);
  }
}

/** Write all of `data` to fd 1 synchronously, so output is complete before exit and ordered with stderr. */
function writeStdout(data: string | Buffer): void {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EPIPE') return; // reader went away (crit-ts ... | head)
      throw e;
    }
  }
}

function decode(a: CritArgs, pretty: boolean, nopl: boolean): void {
  const { data, name } = readInput(a.in);
  const text = imageBytesToJsonText(data, name, { pretty, nopl });
  if (a.out !== undefined && a.out !== '-') writeFileNoFollow(a.out, Buffer.from(text, 'utf8'));
  else writeStdout(`${text}\n`);
}

function encode(a: CritArgs): void {
  const { data, name } = readInput(a.in);
  const bytes = jsonTextToImageBytes(data.toString('utf8'), name);
  if (a.out !== undefined && a.out !== '-') writeFileNoFollow(a.out, bytes);
  else writeStdout(bytes);
}

/**
 * Entry count. Unlike crit, payload bytes are skipped by their real length,
 * so an image with payloads counts one per entry. PAGEMAP leaves out its
 * head entry, as crit does (it counts pagemap entries, i.e. page runs).
 */
function info(a: CritArgs): void {
  const path = a.in ?? '-';
  let kindName: string;
  let count = 0;
  if (path === '-') {
    const { data, name } = readInput(undefined);
    const img = decodeImage(data, name);
    kindName = img.kind.name;
    count = img.entries.length - (img.kind.head !== undefined && img.entries.length > 0 ? 1 : 0);
  } else {
    const stream = iterateImage(path);
    kindName = stream.kind.name;
    for (const fr of stream.entries) {
      if (!(fr.index === 0 && stream.kind.head !== undefined)) count++;
    }
  }
  writeStdout(`${stringifyPy({ magic: kindName, count }, true)}\n`);
}

function explore(a: CritArgs): void {
  const fn = EXPLORERS[a.what ?? ''];
  if (fn === undefined || a.dir === undefined) throw new CriuTsError('EUSAGE', 'x: expected DIR and one of ps, fds, mems, rss');
  const lines: string[] = [];
  try {
    fn(a.dir, (l) => lines.push(l));
  } finally {
    // Whatever was listed before a failure is still shown, like crit.
    if (lines.length > 0) writeStdout(`${lines.join('\n')}\n`);
  }
}

export async function main(argv: string[]): Promise<void> {
  try {
    const a = parseArgs(argv);
    switch (a.cmd) {
      case 'help': writeStdout(USAGE); break;
      case 'version': writeStdout(`${VERSION}\n`); break;
      case 'decode': decode(a, a.pretty, false); break;
      case 'show': decode(a, true, a.nopl); break;
      case 'encode': encode(a); break;
      case 'info': info(a); break;
      case 'x': explore(a); break;
    }
    process.exitCode = 0;
  } catch (e) {
    const msg = isCriuTsError(e) || e instanceof Error ? describeError(e) : String(e);
    process.stderr.write(`crit-ts: ${msg.replace(/\n/g, ' ')}\n`);
    process.exitCode = 1;
  }
  await Promise.resolve();
}
