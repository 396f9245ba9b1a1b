/**
 * /proc/PID/fd and /proc/PID/fdinfo/N. The common head (pos, flags, mnt_id,
 * ino) plus the kind-specific tail each kernel object prints, kept
 * structured. Number bases follow the kernel's printf formats (fs/eventfd.c,
 * fs/eventpoll.c, fs/timerfd.c, fs/signalfd.c, fs/notify/fdinfo.c,
 * fs/locks.c), which mix hex and decimal.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { lines, parseError, procError, readProcLink, readProcText } from './read.js';

export interface EventfdInfo { count: bigint; id: number; semaphore: boolean }
export interface EpollTfd { tfd: number; events: number; data: bigint; pos: bigint; ino: bigint; sdev: number }
export interface TimerfdInfo {
  clockid: number;
  ticks: bigint;
  settimeFlags: number;
  itValue: { sec: bigint; nsec: bigint };
  itInterval: { sec: bigint; nsec: bigint };
}
export interface FHandle { bytes: number; type: number; handle: Buffer }
export interface InotifyWatch { wd: number; ino: bigint; sdev: number; mask: number; ignoredMask: number; fhandle: FHandle | undefined }
export interface FanotifyMark {
  kind: 'inode' | 'mount' | 'sb';
  ino: bigint | undefined;
  sdev: number | undefined;
  mntId: number | undefined;
  mflags: number;
  mask: number;
  ignoredMask: number;
  fhandle: FHandle | undefined;
}
export interface FanotifyInfo { flags: number; eventFlags: number; marks: FanotifyMark[] }
export interface LockInfo {
  id: number;
  /** true for a waiter line ("->"): blocked on the lock above it. */
  blocked: boolean;
  /** POSIX, FLOCK, OFDLCK, DELEG, LEASE */
  type: string;
  /** ADVISORY, MANDATORY, ACTIVE, BREAKING, BREAKER ... */
  kind: string;
  /** READ, WRITE, UNLCK */
  mode: string;
  pid: number;
  devMajor: number;
  devMinor: number;
  ino: bigint;
  start: bigint;
  /** undefined for EOF */
  end: bigint | undefined;
}

export interface FdInfo {
  pos: bigint;
  /** open flags (O_*), including O_CLOEXEC as 02000000 */
  flags: number;
  mntId: number;
  ino: bigint;
  eventfd?: EventfdInfo;
  epoll?: EpollTfd[];
  timerfd?: TimerfdInfo;
  signalfd?: { sigmask: bigint };
  inotify?: InotifyWatch[];
  fanotify?: FanotifyInfo;
  locks?: LockInfo[];
  pidfd?: { pid: number; nsPid: number[] };
  ttyIndex?: number;
  /** Lines of the simple "key:\tvalue" shape by key, including unknown ones. */
  raw: Record<string, string>;
}

export function listFds(pid: number): number[] {
  const dir = `/proc/${pid}/fd`;
  try {
    return readdirSync(dir).map(Number).sort((a, b) => a - b);
  } catch (e) {
    throw procError(pid, dir, e);
  }
}

/**
 * The fds of `pid` whose link reads `target` (e.g. '/dev/net/tun',
 * 'anon_inode:[userfaultfd]'), in order; none when the task is gone. An fd
 * closed while the directory is read is left out.
 */
export function fdsLinkedTo(pid: number, target: string): number[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) out.push(Number(fd));
    } catch {
      // closed meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

export function readFdLink(pid: number, fd: number): string {
  return readProcLink(pid, `/proc/${pid}/fd/${fd}`);
}

/** "k1:v1 k2: v2 ..." into a map; values never contain spaces. */
function kv(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of s.matchAll(/([A-Za-z_][\w-]*):\s*(\S+)/g)) {
    if (m[1] !== undefined && m[2] !== undefined) out.set(m[1], m[2]);
  }
  return out;
}

function fhandleOf(m: Map<string, string>): FHandle | undefined {
  const h = m.get('f_handle');
  if (h === undefined) return undefined;
  return { bytes: parseInt(m.get('fhandle-bytes') ?? '0', 16), type: parseInt(m.get('fhandle-type') ?? '0', 16), handle: Buffer.from(h, 'hex') };
}

function hexOpt(s: string | undefined): number | undefined {
  return s === undefined ? undefined : parseInt(s, 16);
}

function parseLock(body: string, file: string, line: string): LockInfo {
  const m = /^([0-9]+):\s+(->\s+)?(\S+)\s+(\S+)\s+(\S+)\s+(-?[0-9]+)\s+([0-9a-f]+):([0-9a-f]+):([0-9]+)\s+([0-9]+)\s+(\S+)/.exec(body);
  if (m === null) throw parseError(file, line, 'bad lock line');
  return {
    id: Number(m[1]), blocked: m[2] !== undefined, type: m[3] ?? '', kind: m[4] ?? '', mode: m[5] ?? '',
    pid: Number(m[6]), devMajor: parseInt(m[7] ?? '0', 16), devMinor: parseInt(m[8] ?? '0', 16), ino: BigInt(m[9] ?? '0'),
    start: BigInt(m[10] ?? '0'), end: m[11] === 'EOF' ? undefined : BigInt(m[11] ?? '0'),
  };
}

const TIME_PAIR = /^\(([0-9]+), ([0-9]+)\)$/;

export function parseFdinfoText(text: string, file: string): FdInfo {
  const raw: Record<string, string> = {};
  const info: FdInfo = { pos: 0n, flags: 0, mntId: 0, ino: 0n, raw };
  const timer: Partial<TimerfdInfo> = {};
  for (const line of lines(text)) {
    if (line.startsWith('tfd:')) {
      const m = kv(line);
      (info.epoll ??= []).push({
        tfd: Number(m.get('tfd')), events: parseInt(m.get('events') ?? '0', 16), data: BigInt('0x' + (m.get('data') ?? '0')),
        pos: BigInt(m.get('pos') ?? '0'), ino: BigInt('0x' + (m.get('ino') ?? '0')), sdev: parseInt(m.get('sdev') ?? '0', 16),
      });
      continue;
    }
    if (line.startsWith('inotify ')) {
      const m = kv(line.slice(8));
      (info.inotify ??= []).push({
        wd: parseInt(m.get('wd') ?? '0', 16), ino: BigInt('0x' + (m.get('ino') ?? '0')), sdev: parseInt(m.get('sdev') ?? '0', 16),
        mask: parseInt(m.get('mask') ?? '0', 16), ignoredMask: parseInt(m.get('ignored_mask') ?? '0', 16), fhandle: fhandleOf(m),
      });
      continue;
    }
    if (line.startsWith('fanotify ')) {
      const m = kv(line.slice(9));
      const fan = (info.fanotify ??= { flags: 0, eventFlags: 0, marks: [] });
      if (m.has('event-flags')) {
        fan.flags = parseInt(m.get('flags') ?? '0', 16);
        fan.eventFlags = parseInt(m.get('event-flags') ?? '0', 16);
        continue;
      }
      const kind = m.has('ino') ? 'inode' : m.has('mnt_id') ? 'mount' : 'sb';
      fan.marks.push({
        kind, ino: m.has('ino') ? BigInt('0x' + (m.get('ino') ?? '0')) : undefined, sdev: hexOpt(m.get('sdev')),
        mntId: hexOpt(m.get('mnt_id')), mflags: parseInt(m.get('mflags') ?? '0', 16), mask: parseInt(m.get('mask') ?? '0', 16),
        ignoredMask: parseInt(m.get('ignored_mask') ?? '0', 16), fhandle: fhandleOf(m),
      });
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 0) throw parseError(file, line, 'no colon');
    const key = line.slice(0, colon);
    const val = line.slice(colon + 1).trim();
    raw[key] = val;
    switch (key) {
      case 'pos': info.pos = BigInt(val); break;
      case 'flags': info.flags = parseInt(val, 8); break;
      case 'mnt_id': info.mntId = Number(val); break;
      case 'ino': info.ino = BigInt(val); break;
      case 'eventfd-count': (info.eventfd ??= { count: 0n, id: 0, semaphore: false }).count = BigInt('0x' + val); break;
      case 'eventfd-id': (info.eventfd ??= { count: 0n, id: 0, semaphore: false }).id = Number(val); break;
      case 'eventfd-semaphore': (info.eventfd ??= { count: 0n, id: 0, semaphore: false }).semaphore = val === '1'; break;
      case 'sigmask': info.signalfd = { sigmask: BigInt('0x' + val) }; break;
      case 'clockid': timer.clockid = Number(val); break;
      case 'ticks': timer.ticks = BigInt(val); break;
      case 'settime flags': timer.settimeFlags = parseInt(val, 8); break;
      case 'it_value':
      case 'it_interval': {
        const m = TIME_PAIR.exec(val);
        if (m === null) throw parseError(file, line, 'bad timer value');
        const t = { sec: BigInt(m[1] ?? '0'), nsec: BigInt(m[2] ?? '0') };
        if (key === 'it_value') timer.itValue = t;
        else timer.itInterval = t;
        break;
      }
      case 'lock': (info.locks ??= []).push(parseLock(val, file, line)); break;
      case 'Pid': (info.pidfd ??= { pid: 0, nsPid: [] }).pid = Number(val); break;
      case 'NSpid': (info.pidfd ??= { pid: 0, nsPid: [] }).nsPid = val.split(/\s+/).map(Number); break;
      case 'tty-index': info.ttyIndex = Number(val); break;
      default: break;
    }
  }
  if (timer.clockid !== undefined) {
    info.timerfd = {
      clockid: timer.clockid, ticks: timer.ticks ?? 0n, settimeFlags: timer.settimeFlags ?? 0,
      itValue: timer.itValue ?? { sec: 0n, nsec: 0n }, itInterval: timer.itInterval ?? { sec: 0n, nsec: 0n },
    };
  }
  if (raw['pos'] === undefined || raw['flags'] === undefined) throw parseError(file, text.split('\n')[0] ?? '', 'missing pos/flags');
  return info;
}

/** The text of /proc/PID/fdinfo/FD, unparsed (a probe that looks for one field). */
export function readFdinfoText(pid: number, fd: number): string {
  return readProcText(pid, `/proc/${pid}/fdinfo/${fd}`);
}

export function parseFdinfo(pid: number, fd: number): FdInfo {
  return parseFdinfoText(readFdinfoText(pid, fd), `/proc/${pid}/fdinfo/${fd}`);
}

/** The id of the mount an fd of `pid` is on (fdinfo's mnt_id); undefined on a kernel that does not show it. */
export function fdMountId(pid: number, fd: number): number | undefined {
  const info = parseFdinfo(pid, fd);
  return info.raw['mnt_id'] === undefined ? undefined : info.mntId;
}
