/**
 * /proc/PID/maps and /proc/PID/smaps: the VMA list a dump starts from.
 * smaps costs the kernel a page-table walk per VMA, so it is a separate,
 * optional parse; maps alone is cheap.
 */
import { hexBig, decBig, lines, parseError, procDir, readProcText } from './read.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../sys/index.js';


export interface MapsProt {
  read: boolean;
  write: boolean;
  exec: boolean;
  /** PROT_* bits, as mmap/mprotect take them. */
  value: number;
}

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

/** Parse one maps header line; exported for smaps and for tests. */
export function parseMapsLine(line: string, file: string): MapsEntry {
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
    prot: { read, write, exec, value: (read ? PROT_READ : 0) | (write ? PROT_WRITE : 0) | (exec ? PROT_EXEC : 0) },
    shared: m[6] === 's',
    pgoff: hexBig(m[7], file, line),
    devMajor: parseInt(m[8] ?? '0', 16),
    devMinor: parseInt(m[9] ?? '0', 16),
    inode: decBig(m[10], file, line),
    path,
    deleted,
  };
}

export function parseMaps(pid: number, tid?: number): MapsEntry[] {
  const file = `${procDir(pid, tid)}/maps`;
  return lines(readProcText(pid, file)).map((l) => parseMapsLine(l, file));
}

export interface SmapsEntry extends MapsEntry {
  /** Two-letter VmFlags (rd wr ex mr mw me sh gd ...), in kernel order. */
  vmFlags: string[];
  /** Every "Key: N kB" line, in KiB (Rss, Pss, Anonymous, AnonHugePages, Swap, ...). */
  kb: Record<string, number>;
  rssKb: number;
  anonymousKb: number;
  anonHugePagesKb: number;
  swapKb: number;
  /** THPeligible and other unitless numeric lines. */
  values: Record<string, number>;
}

const HEADER = /^[0-9a-f]+-[0-9a-f]+ /;

export function parseSmaps(pid: number, tid?: number): SmapsEntry[] {
  const file = `${procDir(pid, tid)}/smaps`;
  const out: SmapsEntry[] = [];
  let cur: SmapsEntry | undefined;
  for (const line of lines(readProcText(pid, file))) {
    if (HEADER.test(line)) {
      cur = { ...parseMapsLine(line, file), vmFlags: [], kb: {}, rssKb: 0, anonymousKb: 0, anonHugePagesKb: 0, swapKb: 0, values: {} };
      out.push(cur);
      continue;
    }
    if (cur === undefined) throw parseError(file, line, 'field before first VMA');
    const colon = line.indexOf(':');
    if (colon < 0) throw parseError(file, line, 'bad smaps line');
    const key = line.slice(0, colon);
    const rest = line.slice(colon + 1).trim();
    if (key === 'VmFlags') {
      cur.vmFlags = rest.split(/\s+/).filter((f) => f !== '');
      continue;
    }
    const kb = /^([0-9]+) kB$/.exec(rest);
    if (kb !== null) {
      const v = Number(kb[1]);
      cur.kb[key] = v;
      if (key === 'Rss') cur.rssKb = v;
      else if (key === 'Anonymous') cur.anonymousKb = v;
      else if (key === 'AnonHugePages') cur.anonHugePagesKb = v;
      else if (key === 'Swap') cur.swapKb = v;
    } else if (/^[0-9]+$/.test(rest)) {
      cur.values[key] = Number(rest);
    }
    // Other lines (none today) are ignored rather than fatal: new kernels add fields.
  }
  return out;
}

/** /proc/PID/map_files/<start>-<end>: lowercase hex without padding, as the kernel names them. */
export function mapFilesPath(pid: number, start: bigint, end: bigint): string {
  return `/proc/${pid}/map_files/${start.toString(16)}-${end.toString(16)}`;
}
