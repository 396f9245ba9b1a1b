/**
 * /proc/PID/maps and /proc/PID/smaps: the VMA list a dump starts from.
 * smaps costs the kernel a page-table walk per VMA, so it is a separate,
 * optional parse; maps alone is cheap.
 */
import { bufferLines, hexBig, decBig, lines, openProc, parseError, procDir, readProcLines, readProcText } from './read.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE, readAllAsync } from '../sys/index.js';


/** One of eight shared, frozen objects (a 20,000-VMA task's maps hold 20,000 references, not 20,000 objects). */
export interface MapsProt {
  readonly read: boolean;
  readonly write: boolean;
  readonly exec: boolean;
  /** PROT_* bits, as mmap/mprotect take them. */
  readonly value: number;
}

const PROTS: readonly MapsProt[] = Array.from({ length: 8 }, (_, i) => Object.freeze({
  read: (i & 1) !== 0, write: (i & 2) !== 0, exec: (i & 4) !== 0,
  value: ((i & 1) !== 0 ? PROT_READ : 0) | ((i & 2) !== 0 ? PROT_WRITE : 0) | ((i & 4) !== 0 ? PROT_EXEC : 0),
}));

export interface MapsEntry {
  start: bigint;
  end: bigint;
  prot: MapsProt;
  /** 's' in the flags column: MAP_SHARED. */
  shared: boolean;
  pgoff: bigint;
  devMajor: number;
  devMinor: number;
  inode: bigint;
  /** File path without " (deleted)", a special name like "[heap]", or "" for plain anonymous memory. */
  path: string;
  deleted: boolean;
}

const DELETED = ' (deleted)';

/**
 * A path kept beyond the parse, as a string of its own, one per distinct
 * path of a parse (`seen`): a regexp match of a line is a slice of the
 * whole file's text (V8 slices strings of 13 characters or more), so one
 * kept path would keep the whole text (1.4 MB of smaps for 1000 threads).
 */
function ownPath(path: string, seen?: Map<string, string>): string {
  if (path.length < 13) return path;
  const known = seen?.get(path);
  if (known !== undefined) return known;
  const own = Buffer.from(path, 'utf8').toString('utf8');
  seen?.set(own, own);
  return own;
}

/** Parse one maps header line; exported for smaps and for tests. */
export function parseMapsLine(line: string, file: string, seen?: Map<string, string>): MapsEntry {
  // Fixed columns are single-space separated; the path follows padding, and may itself contain spaces.
  const m = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([sp]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) ([0-9]+)(?: +(.*))?$/.exec(line);
  if (m === null) throw parseError(file, line, 'bad maps line');
  const read = m[3] === 'r';
  const write = m[4] === 'w';
  const exec = m[5] === 'x';
  let path = m[11] ?? '';
  let deleted = false;
  // Special names never carry the suffix; a real file named "x (deleted)" cannot be told apart by text alone.
  if (!path.startsWith('[') && path.endsWith(DELETED)) {
    deleted = true;
    path = path.slice(0, -DELETED.length);
  }
  return {
    start: hexBig(m[1], file, line),
    end: hexBig(m[2], file, line),
    prot: PROTS[(read ? 1 : 0) | (write ? 2 : 0) | (exec ? 4 : 0)] as MapsProt,
    shared: m[6] === 's',
    pgoff: hexBig(m[7], file, line),
    devMajor: parseInt(m[8] ?? '0', 16),
    devMinor: parseInt(m[9] ?? '0', 16),
    inode: decBig(m[10], file, line),
    path: ownPath(path, seen),
    deleted,
  };
}

export function parseMaps(pid: number, tid?: number): MapsEntry[] {
  const file = `${procDir(pid, tid)}/maps`;
  const seen = new Map<string, string>();
  return lines(readProcText(pid, file)).map((l) => parseMapsLine(l, file, seen));
}

export interface SmapsEntry extends MapsEntry {
  /**
   * Two-letter VmFlags (rd wr ex mr mw me sh gd ...), in kernel order: one
   * frozen array per distinct line, shared by every VMA that has it (a
   * 20,000-VMA task has a handful of distinct lines; an array each was 4 MB
   * of the dump's heap).
   */
  vmFlags: readonly string[];
  rssKb: number;
  anonymousKb: number;
  anonHugePagesKb: number;
  swapKb: number;
  /** Shared_Clean + Shared_Dirty: pages another mapping (a forked task) holds too */
  sharedKb: number;
  /** KernelPageSize: the page size of a hugetlb VMA, else 4 */
  kernelPageSizeKb: number;
  /** Private_Hugetlb + Shared_Hugetlb: resident hugetlb memory, which Rss leaves out */
  hugetlbKb: number;
}

/**
 * The "Key: N kB" lines of smaps the dump reads, by key length and text:
 * only these are kept. Storing every line's value under its key (a 20,000-VMA
 * task has half a million) cost more than reading the file: a string per key
 * and a keyed store each.
 */
type KbField = 'rssKb' | 'anonymousKb' | 'anonHugePagesKb' | 'swapKb' | 'sharedKb' | 'kernelPageSizeKb' | 'hugetlbKb';
const KB_KEYS: readonly (readonly [string, KbField])[] = [
  ['Rss', 'rssKb'], ['Anonymous', 'anonymousKb'], ['AnonHugePages', 'anonHugePagesKb'], ['Swap', 'swapKb'],
  ['Shared_Clean', 'sharedKb'], ['Shared_Dirty', 'sharedKb'], ['KernelPageSize', 'kernelPageSizeKb'],
  ['Private_Hugetlb', 'hugetlbKb'], ['Shared_Hugetlb', 'hugetlbKb'],
];
/** KB_KEYS by key length (an array indexed by length: no Map look-up per line). */
const KB_BY_LENGTH: ((readonly [string, KbField])[] | undefined)[] = [];
for (const k of KB_KEYS) (KB_BY_LENGTH[k[0].length] ??= []).push(k);

/** Each distinct VmFlags line's flags, one frozen array for every VMA that has it (a few dozen lines in all). */
const vmFlagLines = new Map<string, readonly string[]>();
const NO_FLAGS: readonly string[] = Object.freeze([]);

function vmFlagsOf(line: string): readonly string[] {
  let flags = vmFlagLines.get(line);
  if (flags === undefined) {
    flags = Object.freeze(line.split(' ').filter((f) => f !== ''));
    // A copy as the key: `line` is a slice of a whole chunk of the file, which V8 would keep alive with it.
    vmFlagLines.set(Buffer.from(line, 'latin1').toString('latin1'), flags);
  }
  return flags;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102);
}

/** Whether the line at `pos` is a VMA header ("start-end "). */
function isHeader(text: string, pos: number, end: number): boolean {
  let i = pos;
  while (i < end && isHexDigit(text.charCodeAt(i))) i++;
  if (i === pos || text.charCodeAt(i) !== 45 /* - */) return false;
  const second = ++i;
  while (i < end && isHexDigit(text.charCodeAt(i))) i++;
  return i > second && text.charCodeAt(i) === 32;
}

/**
 * /proc/PID/smaps, walked in place, a chunk of whole lines at a time
 * (readProcLines): a 1000-thread task's smaps is 1.4 MB of text and 54,000
 * lines, a 20,000-VMA task's 24 MB; split into lines first, all of them
 * lived through the parse and were promoted into V8's old space (garbage
 * that grew the heap by megabytes). Only the header lines become strings.
 */
export function parseSmaps(pid: number, tid?: number): SmapsEntry[] {
  const out: SmapsEntry[] = [];
  forEachSmaps(pid, (v) => out.push(v), tid);
  return out;
}

/**
 * parseSmaps one VMA at a time: `onEntry` gets each entry once its lines
 * are all read, in address order, while the file is still being read (a
 * dump of 20,000 VMAs then never holds all their entries at once).
 */
export function forEachSmaps(pid: number, onEntry: (v: SmapsEntry) => void, tid?: number, prefetched?: Buffer): void {
  const file = `${procDir(pid, tid)}/smaps`;
  const seen = new Map<string, string>();
  // The entry being read: handed on, whole, when the next header comes (the last one at the end).
  let cur: SmapsEntry | undefined;
  const read = prefetched === undefined ? (on: (text: string) => void) => readProcLines(pid, file, on, undefined, SMAPS_READ_BYTES) : (on: (text: string) => void) => bufferLines(prefetched, on);
  read((text) => {
    for (let pos = 0; pos < text.length;) {
      let end = text.indexOf('\n', pos);
      if (end < 0) end = text.length;
      const at = pos;
      pos = end + 1;
      if (end === at) continue;
      if (isHeader(text, at, end)) {
        if (cur !== undefined) onEntry(cur);
        // One object literal, not a spread of the maps entry: the spread was half of this parse's time.
        const m = parseMapsLine(text.slice(at, end), file, seen);
        cur = {
          start: m.start, end: m.end, prot: m.prot, shared: m.shared, pgoff: m.pgoff, devMajor: m.devMajor, devMinor: m.devMinor,
          inode: m.inode, path: m.path, deleted: m.deleted,
          vmFlags: NO_FLAGS, rssKb: 0, anonymousKb: 0, anonHugePagesKb: 0, swapKb: 0, sharedKb: 0, kernelPageSizeKb: 0, hugetlbKb: 0,
        };
        continue;
      }
      // No closure or look-up per line here: a 100-process dump walks 57,000 of them, mostly cold code.
      if (cur === undefined) throw parseError(file, text.slice(at, end), 'field before first VMA');
      const colon = text.indexOf(':', at);
      if (colon < 0 || colon > end) throw parseError(file, text.slice(at, end), 'bad smaps line');
      const keyLen = colon - at;
      if (keyLen === 7 && text.startsWith('VmFlags', at)) {
        cur.vmFlags = vmFlagsOf(text.slice(colon + 1, end));
        continue;
      }
      // "Key:   N kB": only the keys the dump reads (KB_KEYS); new kernels add others.
      const candidates = keyLen < KB_BY_LENGTH.length ? KB_BY_LENGTH[keyLen] : undefined;
      if (candidates === undefined) continue;
      let hit: KbField | undefined;
      for (let k = 0; k < candidates.length; k++) {
        const c = candidates[k] as readonly [string, KbField];
        if (text.startsWith(c[0], at)) {
          hit = c[1];
          break;
        }
      }
      if (hit === undefined) continue;
      let i = colon + 1;
      while (text.charCodeAt(i) === 32) i++;
      const digits = i;
      let v = 0;
      while (i < end && isDigit(text.charCodeAt(i))) v = v * 10 + (text.charCodeAt(i++) - 48);
      if (i === digits || end - i !== 3 || !text.startsWith(' kB', i)) throw parseError(file, text.slice(at, end), 'expected N kB');
      cur[hit] += v;
    }
  });
  if (cur !== undefined) onEntry(cur);
}

/**
 * Bytes per read(2) of /proc/PID/smaps. The kernel fills its seq buffer
 * (4 KiB) with whole VMA records until a read's count is met, and a record
 * that no longer fits is dropped and made again at the next read: made by
 * walking that VMA's page tables, so a big VMA on that edge is walked
 * twice. Reads of half the buffer leave room for any record of 2 KiB or
 * less (an smaps record is about 1.1 KiB plus its path): the 1 GiB
 * benchmark task's smaps took 16.5 ms in 1 MiB reads, 8.3 in 2 KiB ones;
 * a 20,000-VMA task's 33 ms either way (5,700 reads instead of 4,000).
 */
export const SMAPS_READ_BYTES = 2048;

/**
 * /proc/PID/smaps read on a worker thread (sys/read-all.ts) while ours
 * asks the frozen task its questions: for a big task, most of reading
 * smaps is the kernel walking its page tables (8 ms for 1 GiB on the
 * benchmark VM), which then overlaps the questions' round trips. Resolves
 * with the file's bytes, or undefined where they cannot be had so (a task
 * of more VMAs than `cap` bytes of smaps hold is read as before, and never
 * read twice: its maps are counted first). Only for a task that stays
 * stopped until the bytes are used, and only with smapsStillHolds()
 * checked then.
 */
export function prefetchSmaps(pid: number, cap = 1 << 20): Promise<Buffer | undefined> {
  let fd: number;
  try {
    // About 1.2 KiB of smaps per VMA, and the worker reads its file whole.
    if (!mappingsAtMost(pid, Math.floor(cap / 2048))) return Promise.resolve(undefined);
    fd = openProc(pid, `/proc/${pid}/smaps`);
  } catch {
    return Promise.resolve(undefined); // the usual read says why
  }
  return readAllAsync(fd, cap, SMAPS_READ_BYTES);
}

/** Whether task `pid` has at most `n` mappings: its maps read until line n + 1 or its end. */
function mappingsAtMost(pid: number, n: number): boolean {
  let count = 0;
  let over = false;
  const file = `/proc/${pid}/maps`;
  readProcLines(pid, file, (text) => {
    if (over) return;
    for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) count++;
    over = count > n;
  }, () => over);
  return !over;
}

/** The "start-end" of a maps line, as the kernel prints it (at least 8 hex digits). */
function rangeKey(start: bigint, end: bigint): string {
  return `${start.toString(16).padStart(8, '0')}-${end.toString(16).padStart(8, '0')} `;
}

/**
 * Whether smaps bytes read earlier still describe the task's mappings:
 * the same VMAs, line for line as /proc/PID/maps shows them now (a maps
 * line is an smaps header), leaving out the `exclude` ranges (the dump's
 * own scratch area, mapped in the task meanwhile). The task was stopped
 * throughout; only our injected calls ran in it, and none of them but the
 * scratch's touches a mapping, so a difference means the bytes are not
 * used (and is logged by the caller), never that they are patched.
 */
export function smapsStillHolds(pid: number, smaps: Buffer, exclude: readonly { start: bigint; end: bigint }[]): boolean {
  const skip = exclude.map((r) => rangeKey(r.start, r.end));
  const kept = (line: string): boolean => !skip.some((k) => line.startsWith(k));
  const now = readProcText(pid, `/proc/${pid}/maps`).split('\n').filter((l) => l !== '' && kept(l));
  let i = 0;
  let same = true;
  bufferLines(smaps, (text) => {
    for (let pos = 0; same && pos < text.length;) {
      let end = text.indexOf('\n', pos);
      if (end < 0) end = text.length;
      const at = pos;
      pos = end + 1;
      if (end === at || !isHeader(text, at, end)) continue;
      const line = text.slice(at, end);
      if (!kept(line)) continue;
      if (now[i++] !== line) same = false;
    }
  });
  return same && i === now.length;
}

/** /proc/PID/map_files/<start>-<end>: lowercase hex without padding, as the kernel names them. */
export function mapFilesPath(pid: number, start: bigint, end: bigint): string {
  return `/proc/${pid}/map_files/${start.toString(16)}-${end.toString(16)}`;
}
