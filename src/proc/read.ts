/**
 * The one way src/proc reads /proc: synchronous, one read per file (targets
 * are stopped while we parse, so speed matters more than streaming; smaps,
 * which can be tens of megabytes, is read in chunks of whole lines), with
 * "the task is gone" told apart from "the file is odd".
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readlinkSync } from 'node:fs';
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

export function readProcText(pid: number, file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch (e) {
    throw procError(pid, file, e);
  }
}

/** Bytes read per chunk by readProcLines: a 256 KiB window whatever the file's size. */
const CHUNK_BYTES = 256 << 10;

/**
 * A big /proc file (a 20,000-VMA task's smaps is 24 MB) in whole lines,
 * a chunk at a time: `onText` gets text ending at a line end, the last
 * piece whatever is left. Read whole into one string, such a file cost its
 * size twice over (the bytes and the string) at the dump's peak.
 */
export function readProcLines(pid: number, file: string, onText: (text: string) => void): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw procError(pid, file, e);
  }
  try {
    let buf = Buffer.allocUnsafe(CHUNK_BYTES);
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
        n = readSync(fd, buf, have, buf.length - have, null);
      } catch (e) {
        throw procError(pid, file, e);
      }
      if (n === 0) break;
      have += n;
      const lastNl = buf.lastIndexOf(10, have - 1);
      if (lastNl < 0) continue;
      onText(buf.toString('latin1', 0, lastNl + 1));
      buf.copy(buf, 0, lastNl + 1, have);
      have -= lastNl + 1;
    }
    if (have > 0) onText(buf.toString('latin1', 0, have));
  } finally {
    closeSync(fd);
  }
}

export function readProcBuffer(pid: number, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw procError(pid, file, e);
  }
}

export function readProcLink(pid: number, file: string): string {
  try {
    return readlinkSync(file, 'latin1');
  } catch (e) {
    throw procError(pid, file, e);
  }
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
