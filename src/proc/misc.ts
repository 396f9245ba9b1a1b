/** Small /proc/PID files: one read each, no structure worth a module of its own. */
import { closeSync, openSync, readSync, readlinkSync } from 'node:fs';
import { lines, parseError, procDir, readProcBuffer, readProcLink, readProcText } from './read.js';
import type { UidGidExtent } from '../images/messages.js';

/** auxv as [type, value] pairs up to and including AT_NULL's absence (AT_NULL dropped). */
export function readAuxv(pid: number): [bigint, bigint][] {
  const buf = readProcBuffer(pid, `/proc/${pid}/auxv`);
  const out: [bigint, bigint][] = [];
  for (let off = 0; off + 16 <= buf.length; off += 16) {
    const type = buf.readBigUInt64LE(off);
    if (type === 0n) break;
    out.push([type, buf.readBigUInt64LE(off + 8)]);
  }
  return out;
}

/** Raw auxv bytes, as CRIU stores mm_saved_auxv (including the AT_NULL pair). */
export function readAuxvRaw(pid: number): Buffer {
  return readProcBuffer(pid, `/proc/${pid}/auxv`);
}

function nulSplit(buf: Buffer): string[] {
  const s = buf.toString('utf8');
  const parts = s.split('\0');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export function readCmdline(pid: number): string[] {
  return nulSplit(readProcBuffer(pid, `/proc/${pid}/cmdline`));
}

export function readEnviron(pid: number): string[] {
  return nulSplit(readProcBuffer(pid, `/proc/${pid}/environ`));
}

export function readComm(pid: number, tid?: number): string {
  return readProcText(pid, `${procDir(pid, tid)}/comm`).replace(/\n$/, '');
}

export function readExe(pid: number): string {
  return readProcLink(pid, `/proc/${pid}/exe`);
}

export function readCwd(pid: number): string {
  return readProcLink(pid, `/proc/${pid}/cwd`);
}

export function readRoot(pid: number): string {
  return readProcLink(pid, `/proc/${pid}/root`);
}

function readNumber(pid: number, file: string): number {
  const t = readProcText(pid, file).trim();
  if (!/^-?[0-9]+$/.test(t)) throw parseError(file, t, 'expected a number');
  return Number(t);
}

/** 4294967295 means "unset". */
export function readLoginuid(pid: number): number {
  return readNumber(pid, `/proc/${pid}/loginuid`);
}

export function readOomScoreAdj(pid: number): number {
  return readNumber(pid, `/proc/${pid}/oom_score_adj`);
}

/**
 * A thread's timer slack from /proc/TID/timerslack_ns (Linux 4.6+; reading
 * another task's needs CAP_SYS_NICE), or undefined when it cannot be read
 * that way: the caller then asks the thread itself.
 */
export function readTimerSlack(tid: number): bigint | undefined {
  let t: string;
  try {
    t = readProcText(tid, `/proc/${tid}/timerslack_ns`).trim();
  } catch {
    return undefined;
  }
  return /^[0-9]+$/.test(t) ? BigInt(t) : undefined;
}

let userShstk: boolean | undefined;

/**
 * Whether a user thread may have a shadow stack on this machine:
 * "user_shstk" among the first CPU's /proc/cpuinfo flags (the kernel sets
 * it only when the CPU has shadow stacks and the kernel lets user threads
 * enable them). Without it no thread can, so a thread's status need not be
 * read to know. Read once (the first CPU's lines: one read, however many
 * CPUs); true when cpuinfo cannot say, so that callers still ask each thread.
 */
export function userShadowStackPossible(): boolean {
  if (userShstk !== undefined) return userShstk;
  let text: string;
  try {
    const fd = openSync('/proc/cpuinfo', 'r');
    try {
      const buf = Buffer.allocUnsafe(16 << 10);
      text = buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, null));
    } finally {
      closeSync(fd);
    }
  } catch {
    return (userShstk = true);
  }
  const flags = /^flags\s*:(.*)$/m.exec(text)?.[1];
  return (userShstk = flags === undefined || flags.split(' ').includes('user_shstk'));
}

export function readPersonality(pid: number): number {
  const file = `/proc/${pid}/personality`;
  const t = readProcText(pid, file).trim();
  if (!/^[0-9a-fA-F]+$/.test(t)) throw parseError(file, t, 'expected hex');
  return parseInt(t, 16);
}

export interface NsIds {
  mnt: number;
  pid: number;
  net: number;
  ipc: number;
  uts: number;
  user: number;
  cgroup: number;
  time: number;
}

export const NS_NAMES: readonly (keyof NsIds)[] = ['mnt', 'pid', 'net', 'ipc', 'uts', 'user', 'cgroup', 'time'];

let ownUserNs: number | undefined;
/** Whether task `pid` is in our user namespace (ours read once). */
export function inOurUserNs(pid: number): boolean {
  ownUserNs ??= readNsId(process.pid, 'user');
  return readNsId(pid, 'user') === ownUserNs;
}

/** Inode of /proc/PID/ns/NAME from its "type:[ino]" link text; 0 if the kernel lacks that namespace. */
export function readNsId(pid: number, name: string): number {
  const file = `/proc/${pid}/ns/${name}`;
  const link = readProcLink(pid, file);
  const m = /^\w+:\[([0-9]+)\]$/.exec(link);
  if (m === null) throw parseError(file, link, 'bad ns link');
  return Number(m[1]);
}

export function readNsIds(pid: number): NsIds {
  const out: NsIds = { mnt: 0, pid: 0, net: 0, ipc: 0, uts: 0, user: 0, cgroup: 0, time: 0 };
  for (const n of NS_NAMES) out[n] = readNsId(pid, n);
  return out;
}

export interface CgroupLine {
  hierarchyId: number;
  /** Controllers, e.g. ["cpu", "cpuacct"], ["name=systemd"], or [] for the unified hierarchy. */
  controllers: string[];
  path: string;
}

export function readCgroup(pid: number): CgroupLine[] {
  const file = `/proc/${pid}/cgroup`;
  return lines(readProcText(pid, file)).map((l) => {
    const m = /^([0-9]+):([^:]*):(.*)$/.exec(l);
    if (m === null) throw parseError(file, l, 'bad cgroup line');
    return { hierarchyId: Number(m[1]), controllers: m[2] === '' ? [] : (m[2] ?? '').split(','), path: m[3] ?? '' };
  });
}

/**
 * The text of thread `tid`'s cgroup file as it is (UTF-8 paths, for
 * cgroup.img), through the shared read buffer: a dump reads one per
 * thread (a v1 hierarchy holds threads, each where it may be).
 */
export function readThreadCgroupText(pid: number, tid: number): string {
  return readProcText(pid, `/proc/${pid}/task/${tid}/cgroup`);
}

/**
 * A path as task `pid` sees it, reachable from criu-ts: the paths a task
 * in another mount namespace shows (fd links, maps, cwd) are relative to
 * that namespace's root, which /proc/PID/root reaches (the tree's root is
 * at its namespace's root; a task chroot'ed inside it is not told apart).
 * In criu-ts's own mount namespace the path is ours already.
 */
export function pathSeenBy(pid: number, path: string): string {
  let theirs: string;
  try {
    theirs = readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return path;
  }
  return theirs === readlinkSync('/proc/self/ns/mnt') || !path.startsWith('/') ? path : `/proc/${pid}/root${path}`;
}

/** /proc/PID/{uid,gid}_map: one extent per line, "inside outside count" (outside as the reader's namespace sees it). */
export function readIdMap(pid: number, which: 'uid_map' | 'gid_map'): UidGidExtent[] {
  const out: UidGidExtent[] = [];
  for (const line of readProcText(pid, `/proc/${pid}/${which}`).split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3) continue;
    const [first, lower, count] = f.map(Number) as [number, number, number];
    out.push({ first, lower_first: lower, count });
  }
  return out;
}

/** /proc/PID/setgroups says "deny": setgroups() is denied in the task's user namespace (false on a kernel without the switch). */
export function setgroupsDenied(pid: number): boolean {
  try {
    return readProcText(pid, `/proc/${pid}/setgroups`).trim() === 'deny';
  } catch {
    return false;
  }
}
