/** /proc/PID/status (and per thread): ids, credentials, signal masks, capabilities. */
import { readdirSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { ownString, parseError, procDir, readProcText } from './read.js';

export interface ProcStatus {
  name: string;
  /**
   * The thread's comm exactly as /proc/PID/comm gives it, when the Name
   * line shows it unchanged: the kernel escapes only a newline and a
   * backslash there (each to a backslash pair), so a Name with no
   * backslash is the comm itself; undefined otherwise (read the comm file).
   */
  comm: string | undefined;
  /** Single letter: R S D T t Z X I ... */
  state: string;
  tgid: number;
  pid: number;
  ppid: number;
  tracerPid: number;
  /** real, effective, saved, filesystem */
  uid: [number, number, number, number];
  gid: [number, number, number, number];
  fdSize: number;
  groups: number[];
  nsTgid: number[];
  nsPid: number[];
  nsPgid: number[];
  nsSid: number[];
  /** "queued/limit" */
  sigQ: { queued: number; limit: number };
  sigPnd: bigint;
  shdPnd: bigint;
  sigBlk: bigint;
  sigIgn: bigint;
  sigCgt: bigint;
  capInh: bigint;
  capPrm: bigint;
  capEff: bigint;
  capBnd: bigint;
  capAmb: bigint;
  noNewPrivs: number;
  /** 0 off, 1 strict, 2 filter */
  seccomp: number;
  seccompFilters: number;
  threads: number;
  umask: number;
  /** x86_Thread_features: the thread's enabled features ("shstk", "wrss"), empty where none or not x86 */
  x86ThreadFeatures: string[];
}

function nums(s: string): number[] {
  return s.split(/\s+/).filter((x) => x !== '').map(Number);
}

/**
 * The first letters of the lines no field below comes from (Vm*, Rss*,
 * Hugetlb*, Mems_allowed*, Kthread, voluntary_ctxt_switches, untag_mask,
 * ...): about 20 of a status file's 56 lines, the longest among them,
 * are not cut out and kept (a 1000-thread dump and restore parse 1000
 * each).
 */
const UNREAD_FIRST = new Set(['V', 'R', 'H', 'M', 'K', 'v', 'n', 'u', 'c', 't'].map((c) => c.charCodeAt(0)));
const ZERO_MASK = '0000000000000000';

/**
 * Nothing of the text outlives the parse: the values are slices of it, and
 * one kept slice keeps the whole file (1.4 KB per thread: the restore of a
 * 1000-thread process held 900 of them, with their keyed lines, 5 MB).
 */
export function parseStatus(pid: number, tid?: number): ProcStatus {
  const file = `${procDir(pid, tid)}/status`;
  // Walked in place (no array of lines, no regexp per line): a 1000-thread dump and restore read one per thread.
  const raw = new Map<string, string>();
  const text = readProcText(pid, file);
  for (let pos = 0; pos < text.length;) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', pos);
    if (colon < 0 || colon > end) throw parseError(file, text.slice(pos, end), 'no colon');
    // Name keeps its inner spaces; only the separating tab (and surrounding blanks) go.
    if (!UNREAD_FIRST.has(text.charCodeAt(pos))) raw.set(text.slice(pos, colon), text.slice(colon + 1, end).trim());
    pos = end + 1;
  }
  const need = (k: string): string => {
    const v = raw.get(k);
    if (v === undefined) throw new CriuTsError('EPROC', `${file}: missing ${k}`, { file, line: k });
    return v;
  };
  const int = (k: string, dflt?: number): number => {
    const v = raw.get(k);
    if (v === undefined && dflt !== undefined) return dflt;
    const s = need(k);
    if (!/^-?[0-9]+$/.test(s)) throw parseError(file, `${k}: ${s}`, 'expected decimal');
    return Number(s);
  };
  const hex = (k: string): bigint => {
    const s = raw.get(k) ?? '0';
    // Most masks are empty: no regexp and no BigInt parse for them.
    if (s === ZERO_MASK) return 0n;
    if (!/^[0-9a-fA-F]+$/.test(s)) throw parseError(file, `${k}: ${s}`, 'expected hex');
    return BigInt('0x' + s);
  };
  const quad = (k: string): [number, number, number, number] => {
    const v = nums(need(k));
    if (v.length !== 4 || v.some((x) => !Number.isInteger(x))) throw parseError(file, `${k}: ${need(k)}`, 'expected 4 ids');
    return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0];
  };
  const sigQ = /^([0-9]+)\/([0-9]+)$/.exec(raw.get('SigQ') ?? '0/0');
  if (sigQ === null) throw parseError(file, `SigQ: ${raw.get('SigQ') ?? ''}`, 'bad SigQ');
  const umask = raw.get('Umask');
  // "Name:\t" then the escaped comm: the line cut exactly, its spaces kept.
  const nameEnd = text.indexOf('\n');
  const rawName = text.startsWith('Name:\t') ? text.slice(6, nameEnd < 0 ? text.length : nameEnd) : undefined;
  return {
    name: ownString(need('Name')),
    comm: rawName === undefined || rawName.includes('\\') ? undefined : ownString(rawName),
    state: need('State').charAt(0),
    tgid: int('Tgid'),
    pid: int('Pid'),
    ppid: int('PPid'),
    tracerPid: int('TracerPid'),
    uid: quad('Uid'),
    gid: quad('Gid'),
    fdSize: int('FDSize', 0),
    groups: nums(raw.get('Groups') ?? ''),
    nsTgid: nums(raw.get('NStgid') ?? ''),
    nsPid: nums(raw.get('NSpid') ?? ''),
    nsPgid: nums(raw.get('NSpgid') ?? ''),
    nsSid: nums(raw.get('NSsid') ?? ''),
    sigQ: { queued: Number(sigQ[1]), limit: Number(sigQ[2]) },
    sigPnd: hex('SigPnd'),
    shdPnd: hex('ShdPnd'),
    sigBlk: hex('SigBlk'),
    sigIgn: hex('SigIgn'),
    sigCgt: hex('SigCgt'),
    capInh: hex('CapInh'),
    capPrm: hex('CapPrm'),
    capEff: hex('CapEff'),
    capBnd: hex('CapBnd'),
    capAmb: hex('CapAmb'),
    noNewPrivs: int('NoNewPrivs', 0),
    seccomp: int('Seccomp', 0),
    seccompFilters: int('Seccomp_filters', 0),
    threads: int('Threads', 1),
    umask: umask === undefined ? 0 : parseInt(umask, 8),
    x86ThreadFeatures: (raw.get('x86_Thread_features') ?? '').split(/\s+/).filter((w) => w !== '').map(ownString),
  };
}

/**
 * Every process whose main thread `tracer` traces (TracerPid): the tasks a
 * dump holds, for a kind that must find which of them holds an object.
 * Processes that go meanwhile are left out.
 */
export function processesTracedBy(tracer: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      if (parseStatus(Number(name)).tracerPid === tracer) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
