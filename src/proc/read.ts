/**
 * The one way src/proc reads /proc: synchronous, one read per file (targets
 * are stopped while we parse, so speed matters more than streaming; smaps,
 * which can be tens of megabytes, is read in chunks of whole lines), with
 * "the task is gone" told apart from "the file is odd".
 *
 * Text is decoded as UTF-8, the encoding our images give every string
 * (paths, names): a name read as Latin-1 would be written as the UTF-8 of
 * each byte and restored under another name. A link target (a path) that
 * is not valid UTF-8 cannot be kept as text and is refused in one line; in
 * other files such bytes (a comm cut inside a character) become U+FFFD.
 */
import { closeSync, existsSync, openSync, readSync, readlinkSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { CriuTsError } from '../errors.js';

/** /proc/PID or /proc/PID/task/TID: per-thread files differ from the leader's. */
export function procDir(pid: number, tid?: number): string {
  return tid === undefined ? `/proc/${pid}` : `/proc/${pid}/task/${tid}`;
}

function errCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const c = (e as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}

/**
 * Map an fs error on a /proc path to ENOTASK (the process, or the thread the
 * path names, vanished) or EPROC (anything else, e.g. a closed fd).
 */
export function procError(pid: number, file: string, e: unknown): CriuTsError {
  const code = errCode(e);
  if (code === 'ENOENT' || code === 'ESRCH') {
    const task = /^\/proc\/[0-9]+(?:\/task\/[0-9]+)?/.exec(file)?.[0] ?? `/proc/${pid}`;
    if (!existsSync(task)) return new CriuTsError('ENOTASK', `task ${task.slice(6)} is gone`, { pid, file }, e);
  }
  return new CriuTsError('EPROC', `cannot read ${file}: ${code ?? String(e)}`, { pid, file, errno: code }, e);
}

/**
 * One read buffer for every /proc file read here (status, comm, children,
 * auxv, smaps...: a few per task and per thread). readFileSync reads a file
 * of size 0, as /proc's are, into a fresh 8 KiB ArrayBuffer per read
 * (malloc'd, outside V8's heap) and concatenates; smaps had a 256 KiB
 * window per task. A 1000-thread dump made 90 MiB of such buffers, a
 * 100-process one 25 MiB, each freed only by a later scavenge: most of the
 * malloc heap at their peaks (docs/performance.md). The reads are
 * synchronous, so one buffer serves them all, one at a time; a read
 * started from inside readProcLines' callback (the dump's memory walk
 * reads other /proc files per VMA while smaps is being read) takes a
 * second one, kept too, rather than overwrite the one being parsed or
 * allocate 256 KiB per VMA.
 */
const CHUNK_BYTES = 256 << 10;
/** readProcLines with small reads hands on text once this much is read (or at the end). */
const GATHER_BYTES = 64 << 10;
/** buffers not in use: at most two are kept (one read, and one nested in its callback) */
const spare: Buffer[] = [];

/** A buffer of CHUNK_BYTES (allocUnsafeSlow: memory of its own, not a slice of Node's 8 KiB pool), reused when one is free. */
function takeBuffer(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
}

function giveBack(buf: Buffer): void {
  if (buf.length === CHUNK_BYTES && spare.length < 2 && !spare.includes(buf)) spare.push(buf);
}

export function openProc(pid: number, file: string): number {
  try {
    return openSync(file, 'r');
  } catch (e) {
    throw procError(pid, file, e);
  }
}

/**
 * Read all of `fd` through the shared buffer: `onFull` gets the buffer
 * each time it fills and returns how many bytes to keep at its start (a
 * partial line); returns how many bytes are left in it at the end.
 */
function readThrough(pid: number, file: string, fd: number, buf: Buffer, onFull: (have: number) => number): number {
  let have = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, have, buf.length - have, null);
    } catch (e) {
      throw procError(pid, file, e);
    }
    if (n === 0) return have;
    have += n;
    if (have === buf.length) have = onFull(have);
  }
}

export function readProcText(pid: number, file: string): string {
  const fd = openProc(pid, file);
  const buf = takeBuffer();
  try {
    // A chunk may end inside a character: the decoder keeps its first bytes for the next one.
    // Made only for a file longer than the buffer (most, a status or stat, fit in one read).
    let utf8: StringDecoder | undefined;
    let text = '';
    const have = readThrough(pid, file, fd, buf, (full) => {
      utf8 ??= new StringDecoder('utf8');
      text += utf8.write(buf.subarray(0, full));
      return 0;
    });
    return utf8 === undefined ? buf.toString('utf8', 0, have) : text + utf8.end(buf.subarray(0, have));
  } finally {
    giveBack(buf);
    closeSync(fd);
  }
}

/**
 * Bytes of a /proc file read earlier (proc/maps.ts prefetchSmaps), handed
 * on as readProcLines hands on a file: whole lines, a chunk at a time.
 */
export function bufferLines(bytes: Buffer, onText: (text: string) => void): void {
  for (let at = 0; at < bytes.length;) {
    let end = Math.min(bytes.length, at + CHUNK_BYTES);
    if (end < bytes.length) {
      const nl = bytes.lastIndexOf(10, end - 1);
      if (nl >= at) end = nl + 1;
    }
    onText(bytes.toString('utf8', at, end)); // a newline never falls inside a UTF-8 character
    at = end;
  }
}

/**
 * A big /proc file (a 20,000-VMA task's smaps is 24 MB) in whole lines,
 * a chunk at a time: `onText` gets text ending at a line end, the last
 * piece whatever is left. Read whole into one string, such a file cost its
 * size twice over (the bytes and the string) at the dump's peak.
 * `stop`: asked after each chunk, true ends the read early. `readBytes`:
 * the most asked of one read(2) (proc/maps.ts SMAPS_READ_BYTES says why).
 */
export function readProcLines(pid: number, file: string, onText: (text: string) => void, stop?: () => boolean, readBytes = Infinity): void {
  const fd = openProc(pid, file);
  let buf = takeBuffer();
  const first = buf;
  try {
    let have = 0;
    for (;;) {
      if (have === buf.length) {
        // A single line longer than the window (a path of 4096 bytes at most): grow for it.
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      let n: number;
      try {
        n = readSync(fd, buf, have, Math.min(buf.length - have, readBytes), null);
      } catch (e) {
        throw procError(pid, file, e);
      }
      if (n === 0) break;
      have += n;
      // Small reads gathered into one piece of text, not a string each.
      if (readBytes !== Infinity && have < GATHER_BYTES) continue;
      const lastNl = buf.lastIndexOf(10, have - 1);
      if (lastNl < 0) continue;
      onText(buf.toString('utf8', 0, lastNl + 1)); // a newline never falls inside a UTF-8 character
      buf.copy(buf, 0, lastNl + 1, have);
      have -= lastNl + 1;
      if (stop?.() === true) return;
    }
    if (have > 0) onText(buf.toString('utf8', 0, have));
  } finally {
    giveBack(first);
    closeSync(fd);
  }
}

/** A /proc file's bytes, in a buffer of the caller's own (kept, unlike the shared one it is read through). */
export function readProcBuffer(pid: number, file: string): Buffer {
  const fd = openProc(pid, file);
  const buf = takeBuffer();
  try {
    const parts: Buffer[] = [];
    const have = readThrough(pid, file, fd, buf, (full) => {
      parts.push(Buffer.from(buf.subarray(0, full)));
      return 0;
    });
    const last = Buffer.from(buf.subarray(0, have));
    return parts.length === 0 ? last : Buffer.concat([...parts, last]);
  } finally {
    giveBack(buf);
    closeSync(fd);
  }
}

export function readProcLink(pid: number, file: string): string {
  let target: Buffer;
  try {
    target = readlinkSync(file, 'buffer');
  } catch (e) {
    throw procError(pid, file, e);
  }
  if (!isUtf8(target)) {
    throw new CriuTsError('EUNSUPPORTED', `${file} -> ${JSON.stringify(target.toString('latin1'))}: the path is not valid UTF-8, and images keep paths as UTF-8 text`, { pid, file });
  }
  return target.toString('utf8');
}

export function parseError(file: string, line: string, what: string): CriuTsError {
  return new CriuTsError('EPROC', `${file}: ${what}: ${JSON.stringify(line)}`, { file, line });
}

/** Parse a hex string as bigint, or throw EPROC naming the file and line. */
export function hexBig(s: string | undefined, file: string, line: string): bigint {
  if (s === undefined || !/^[0-9a-fA-F]+$/.test(s)) throw parseError(file, line, 'expected hex');
  return BigInt('0x' + s);
}

export function decInt(s: string | undefined, file: string, line: string): number {
  if (s === undefined || !/^-?[0-9]+$/.test(s)) throw parseError(file, line, 'expected decimal');
  return Number(s);
}

export function decBig(s: string | undefined, file: string, line: string): bigint {
  if (s === undefined || !/^-?[0-9]+$/.test(s)) throw parseError(file, line, 'expected decimal');
  return BigInt(s);
}

/**
 * A string kept beyond a parse as one of its own: V8 makes a slice of 13
 * characters or more a view of the whole text, which it then keeps alive.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

/** Text of a file split into non-empty lines. */
export function lines(text: string): string[] {
  const out = text.split('\n');
  if (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}
