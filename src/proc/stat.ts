/**
 * /proc/PID/stat: one line, 52 fields. comm may hold spaces and ')' so we
 * split at the last ')'. Addresses are bigint; counters that fit are numbers.
 */
import { closeSync, readSync } from 'node:fs';
import { listChildren, listThreads } from './children.js';
import { listFds } from './fdinfo.js';
import { openProc, parseError, procDir, readProcText } from './read.js';

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  ttyNr: number;
  tpgid: number;
  flags: number;
  minflt: bigint;
  cminflt: bigint;
  majflt: bigint;
  cmajflt: bigint;
  utime: bigint;
  stime: bigint;
  cutime: bigint;
  cstime: bigint;
  priority: number;
  nice: number;
  numThreads: number;
  itrealvalue: number;
  starttime: bigint;
  vsize: bigint;
  rss: bigint;
  rsslim: bigint;
  startCode: bigint;
  endCode: bigint;
  startStack: bigint;
  kstkesp: bigint;
  kstkeip: bigint;
  signal: bigint;
  blocked: bigint;
  sigignore: bigint;
  sigcatch: bigint;
  wchan: bigint;
  nswap: bigint;
  cnswap: bigint;
  exitSignal: number;
  processor: number;
  rtPriority: number;
  policy: number;
  delayacctBlkioTicks: bigint;
  guestTime: bigint;
  cguestTime: bigint;
  startData: bigint;
  endData: bigint;
  startBrk: bigint;
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
  exitCode: number;
}

export function parseStatText(text: string, file: string): ProcStat {
  const line = text.replace(/\n$/, '');
  const open = line.indexOf('(');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) throw parseError(file, line, 'no (comm)');
  const f = line.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field n lives at f[n - 3].
  if (f.length < 50) throw parseError(file, line, `only ${f.length + 2} fields`);
  const n = (i: number): number => {
    const s = f[i - 3];
    if (s === undefined || !/^-?[0-9]+$/.test(s)) throw parseError(file, line, `field ${i} not a number`);
    return Number(s);
  };
  const b = (i: number): bigint => {
    const s = f[i - 3];
    if (s === undefined || !/^-?[0-9]+$/.test(s)) throw parseError(file, line, `field ${i} not a number`);
    return BigInt(s);
  };
  return {
    pid: Number(line.slice(0, open).trim()),
    comm: line.slice(open + 1, close),
    state: f[0] ?? '',
    ppid: n(4), pgrp: n(5), session: n(6), ttyNr: n(7), tpgid: n(8), flags: n(9),
    minflt: b(10), cminflt: b(11), majflt: b(12), cmajflt: b(13),
    utime: b(14), stime: b(15), cutime: b(16), cstime: b(17),
    priority: n(18), nice: n(19), numThreads: n(20), itrealvalue: n(21), starttime: b(22),
    vsize: b(23), rss: b(24), rsslim: b(25),
    startCode: b(26), endCode: b(27), startStack: b(28), kstkesp: b(29), kstkeip: b(30),
    signal: b(31), blocked: b(32), sigignore: b(33), sigcatch: b(34), wchan: b(35),
    nswap: b(36), cnswap: b(37), exitSignal: n(38), processor: n(39), rtPriority: n(40), policy: n(41),
    delayacctBlkioTicks: b(42), guestTime: b(43), cguestTime: b(44),
    startData: b(45), endData: b(46), startBrk: b(47),
    argStart: b(48), argEnd: b(49), envStart: b(50), envEnd: b(51), exitCode: n(52),
  };
}

export function parseStat(pid: number, tid?: number): ProcStat {
  const file = `${procDir(pid, tid)}/stat`;
  return parseStatText(readProcText(pid, file), file);
}

/** The task's resident memory in bytes (/proc/PID/statm: file, anonymous and shmem pages alike; what smaps' Rss sums to). */
export function residentBytes(pid: number): number {
  const file = `/proc/${pid}/statm`;
  const text = readProcText(pid, file);
  const pages = Number(text.split(' ')[1]);
  if (!Number.isFinite(pages)) throw parseError(file, text, 'expected size resident ...');
  return pages * 4096;
}

/** What `isSmallProcess` allows: a process like the 1 MiB benchmark subject's, or a shell's. */
const SMALL = { threads: 16, fds: 64, residentBytes: 16 << 20, mapsBytes: 16 << 10 };

/**
 * Whether `pid` is one small process: no children, few threads, fds and
 * mappings (its maps text under 16 KiB, of which no more is read), little
 * resident memory. What a dump of it costs criu-ts in memory is then small
 * too (cli/trim-pages.ts). Any doubt (a task gone, a file unreadable)
 * answers false.
 */
export function isSmallProcess(pid: number): boolean {
  try {
    const st = parseStat(pid);
    if (st.numThreads > SMALL.threads || Number(st.rss) * 4096 > SMALL.residentBytes) return false;
    if (listFds(pid).length > SMALL.fds || listChildren(pid, listThreads(pid)).length > 0) return false;
    const file = `/proc/${pid}/maps`;
    const fd = openProc(pid, file);
    try {
      const buf = Buffer.allocUnsafe(SMALL.mapsBytes);
      let have = 0;
      for (let n = 1; n > 0 && have < buf.length; have += n) n = readSync(fd, buf, have, buf.length - have, null);
      return have < buf.length;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}
