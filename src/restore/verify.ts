/**
 * `restore --verify` (beyond CRIU): once every task is rebuilt and still
 * held, read it back with the dump's own collectors and compare what we
 * read with the images, field by field. A difference names the task, the
 * field and both values; by default the restore then fails (every task is
 * killed) instead of letting a damaged tree run.
 *
 * What is compared: the task core (signal actions, itimers and POSIX
 * timers, rlimits, personality, name, pending shared signals, loginuid,
 * oom_score_adj, subreaper, AMX permission, membarrier), every thread's
 * core (credentials, sigaltstack, robust list, scheduling, pending
 * signals, pdeath signal, timer slack, rseq), the XSAVE area, the general
 * registers and the signal mask as the thread will resume with them, the
 * VMA list (ranges, protections, shared/private, file or anonymous,
 * madvise bits), the content of every private page the dump saved, the
 * fd table (numbers, close-on-exec, the kind of file, the path of regular
 * files), cwd, root and umask.
 *
 * Known allowances, each for a reason: itimer and POSIX timer values count
 * down (restored at most the dumped value, never 0 where it was armed);
 * the rseq area's cpu fields are the kernel's to rewrite; a thread that
 * was dumped inside a restartable syscall resumes through the kernel's
 * restart logic, so its registers are not compared; fields a dump written
 * by another tool (CRIU) has and our collectors do not read are skipped.
 */
import { openSync, readSync, closeSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { decodeGpRegs, GP_REG_NAMES, ProcMem, PAGE_SIZE } from '../sys/index.js';
import { parseStatus, parseSmaps, listFds, readFdLink, parseFdinfo } from '../proc/index.js';
import type { SmapsEntry } from '../proc/index.js';
import type { CoreEntry, FileEntry, VmaEntry, PagemapEntry } from '../images/messages.js';
import type { Tracee } from '../infect/tracee.js';
import { sigmaskNow } from '../infect/ptrace-state.js';
import { askThreads, dumpTaskCore, dumpThreadCore, type ThreadAnswers } from '../dump/task-state.js';
import { dumpFpRegs } from '../dump/regs.js';
import type { DumpImages, TaskImages } from './images.js';
import type { RestoreNode } from './plan.js';
import { RESOURCE_KINDS } from '../kinds/index.js';

const log = logger('verify');

export interface VerifyDifference {
  pid: number;
  tid?: number;
  field: string;
  dumped: string;
  restored: string;
}

/** A difference as one line: "task 12 thread 13: sigactions[10].flags: dumped 0x4000000, restored 0x0". */
export function describeDifference(d: VerifyDifference): string {
  const who = d.tid !== undefined && d.tid !== d.pid ? `task ${d.pid} thread ${d.tid}` : `task ${d.pid}`;
  return `${who}: ${d.field}: dumped ${d.dumped}, restored ${d.restored}`;
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return `0x${v.toString(16)}`;
  if (Buffer.isBuffer(v)) return v.length <= 16 ? `<${v.toString('hex')}>` : `<${v.length} bytes, ${v.subarray(0, 8).toString('hex')}...>`;
  if (v === undefined) return '(none)';
  if (typeof v === 'object') return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x));
  return String(v);
}

/**
 * Walk `dumped` (from the images) and compare every field `restored` also
 * has. Fields whose dotted path from the top is in `skip` are left out
 * (a top-level "flags" is the task's PF_* flags, not a sigaction's).
 */
function diffValue(dumped: unknown, restored: unknown, path: string, skip: ReadonlySet<string>, out: (field: string, a: unknown, b: unknown) => void): void {
  if (restored === undefined || dumped === undefined) return;
  if (Buffer.isBuffer(dumped) || Buffer.isBuffer(restored)) {
    const a = Buffer.isBuffer(dumped) ? dumped : Buffer.alloc(0);
    const b = Buffer.isBuffer(restored) ? restored : Buffer.alloc(0);
    if (!a.equals(b)) out(path, dumped, restored);
    return;
  }
  if (Array.isArray(dumped)) {
    const r = Array.isArray(restored) ? restored : [];
    if (dumped.length !== r.length) {
      out(`${path}.length`, dumped.length, r.length);
      return;
    }
    dumped.forEach((x, i) => diffValue(x, r[i], `${path}[${i}]`, skip, out));
    return;
  }
  if (typeof dumped === 'object' && dumped !== null) {
    if (typeof restored !== 'object' || restored === null) {
      out(path, dumped, restored);
      return;
    }
    for (const [k, v] of Object.entries(dumped)) {
      const p = path === '' ? k : `${path}.${k}`;
      if (skip.has(p) || k === '_unknown_fields') continue;
      diffValue(v, (restored as Record<string, unknown>)[k], p, skip, out);
    }
    return;
  }
  if (dumped !== restored) out(path, dumped, restored);
}

const SECCOMP_MODES: readonly string[] = ['disabled', 'strict', 'filter'];

/** Task-core fields that legitimately differ, or are compared on their own terms. */
const TASK_SKIP: ReadonlySet<string> = new Set([
  'task_state', 'exit_code', 'stop_signo', 'flags', 'blk_sigset', 'timers', 'cg_set', 'seccomp_mode', 'seccomp_filter', 'signals_s',
]);
/** Thread-core fields: the mask is held by us until the release (checked there); seccomp is checked from /proc. */
const THREAD_SKIP: ReadonlySet<string> = new Set(['blk_sigset', 'seccomp_mode', 'seccomp_filter', 'cg_set', 'signals_p']);

const SI_TIMER = -2;
const SI_KERNEL = 0x80;
const SIGALRM = 14;
const SIGVTALRM = 26;
const SIGPROF = 27;

/** The signals the dumped itimers may raise while the tree is held (they keep counting). */
function itimerSignals(tc: NonNullable<CoreEntry['tc']>): Set<number> {
  const out = new Set<number>();
  const armed = (e: { vsec: bigint; vusec: bigint; isec: bigint; iusec: bigint } | undefined): boolean => e !== undefined && (e.vsec !== 0n || e.vusec !== 0n);
  if (armed(tc.timers?.real)) out.add(SIGALRM);
  if (armed(tc.timers?.virt)) out.add(SIGVTALRM);
  if (armed(tc.timers?.prof)) out.add(SIGPROF);
  return out;
}

/**
 * Pending signals: every dumped one is queued again, in order among
 * themselves. A timer restored before them (timers go in with the task,
 * pending signals at the very end) that expired while the tree was held
 * may have queued signals of its own before or between them: only such
 * ones (SI_TIMER) are allowed besides the dumped ones.
 */
function verifySignals(
  dumped: readonly { siginfo: Buffer }[], now: readonly { siginfo: Buffer }[], field: string, c: Collector, tid?: number,
  timerSignals: ReadonlySet<number> = new Set(),
): void {
  // A timer's own signal: a POSIX timer's (SI_TIMER), or an armed itimer's (SIGALRM/SIGVTALRM/SIGPROF from the kernel).
  const fromTimer = (si: Buffer): boolean => si.readInt32LE(8) === SI_TIMER || (si.readInt32LE(8) === SI_KERNEL && timerSignals.has(si.readInt32LE(0)));
  let j = 0;
  for (const [i, d] of dumped.entries()) {
    while (j < now.length && !(now[j] as { siginfo: Buffer }).siginfo.equals(d.siginfo)) {
      const extra = (now[j] as { siginfo: Buffer }).siginfo;
      if (!fromTimer(extra)) {
        c.add(`${field}[${i}]`, `signal ${d.siginfo.readInt32LE(0)}`, `signal ${extra.readInt32LE(0)} code ${extra.readInt32LE(8)}`, tid);
        return;
      }
      j++;
    }
    if (j >= now.length) {
      c.add(`${field}[${i}]`, `signal ${d.siginfo.readInt32LE(0)}`, 'not pending', tid);
      return;
    }
    j++;
  }
  for (const r of now.slice(j)) {
    if (!fromTimer(r.siginfo)) c.add(`${field} (extra)`, 'none', `signal ${r.siginfo.readInt32LE(0)} code ${r.siginfo.readInt32LE(8)}`, tid);
  }
}

class Collector {
  readonly diffs: VerifyDifference[] = [];
  constructor(readonly pid: number) {}
  add(field: string, dumped: unknown, restored: unknown, tid?: number): void {
    this.diffs.push({ pid: this.pid, ...(tid === undefined ? {} : { tid }), field, dumped: show(dumped), restored: show(restored) });
  }
}

/**
 * A timer kept counting while the tree was held: its value is at most the
 * dumped one, or, if it expired meanwhile, reloaded from its interval (a
 * one-shot one may have run out: its signal is then pending). A disarmed
 * timer stays disarmed.
 */
function countdownOk(dsec: bigint, dfrac: bigint, isec: bigint, ifrac: bigint, rsec: bigint, rfrac: bigint, unit: bigint): boolean {
  const d = dsec * unit + dfrac;
  const i = isec * unit + ifrac;
  const r = rsec * unit + rfrac;
  if (d === 0n) return r === 0n;
  // The kernel may round a value it is given up to its clock's tick (CPU-time itimers count in ticks): 10 ms of slack.
  const slack = unit / 100n;
  return r <= (d > i ? d : i) + slack && (r > 0n || i === 0n);
}

function verifyTimers(task: TaskImages, tc: NonNullable<CoreEntry['tc']>, c: Collector): void {
  const dumped = task.cores[0]?.tc?.timers;
  const now = tc.timers;
  if (!dumped || !now) return;
  for (const which of ['real', 'virt', 'prof'] as const) {
    const a = dumped[which];
    const b = now[which];
    if (!a || !b) continue;
    if (a.isec !== b.isec || a.iusec !== b.iusec) c.add(`timers.${which}.interval`, `${a.isec}s ${a.iusec}us`, `${b.isec}s ${b.iusec}us`);
    if (!countdownOk(a.vsec, a.vusec, a.isec, a.iusec, b.vsec, b.vusec, 1_000_000n)) c.add(`timers.${which}.value`, `${a.vsec}s ${a.vusec}us`, `${b.vsec}s ${b.vusec}us`);
  }
  const dp = dumped.posix ?? [];
  const rp = now.posix ?? [];
  if (dp.length !== rp.length) {
    c.add('timers.posix.length', dp.length, rp.length);
    return;
  }
  for (const a of dp) {
    const b = rp.find((x) => x.it_id === a.it_id);
    if (!b) {
      c.add(`timers.posix[${a.it_id}]`, 'present', 'missing');
      continue;
    }
    diffValue(a, b, '', new Set(['overrun', 'vsec', 'vnsec']), (f, x, y) => c.add(`timers.posix[${a.it_id}].${f}`, x, y));
    if (!countdownOk(a.vsec, a.vnsec, a.isec, a.insec, b.vsec, b.vnsec, 1_000_000_000n)) c.add(`timers.posix[${a.it_id}].value`, `${a.vsec}s ${a.vnsec}ns`, `${b.vsec}s ${b.vnsec}ns`);
  }
}

/** Everything but registers and masks: runs while the task's scratch area is still there (injected calls read it back). */
export function verifyTaskState(n: RestoreNode, img: DumpImages): VerifyDifference[] {
  const task = n.images;
  const main = n.tracee;
  if (!task || !main) return [];
  const c = new Collector(n.pid);
  // Read through /proc and ptrace by the task's pid here (its image pid
  // differs in a new pid namespace); a timer's thread is then named as the task sees it.
  const pid = n.real;
  const st = parseStatus(pid);
  const tc = dumpTaskCore(main, pid, st);
  const vtid = new Map(n.threads.map((th, i) => [th.tid, task.pstree.threads?.[i] ?? n.pid]));
  for (const pt of tc.timers?.posix ?? []) {
    if (pt.notify_thread_id !== undefined) pt.notify_thread_id = vtid.get(pt.notify_thread_id) ?? pt.notify_thread_id;
  }
  for (const k of RESOURCE_KINDS) k.verifyView?.(pid, { tc, threadCores: [] });
  const dumpedTc = task.cores[0]?.tc;
  if (dumpedTc) {
    diffValue(dumpedTc, tc, '', TASK_SKIP, (f, a, b) => c.add(f, a, b));
    verifySignals(dumpedTc.signals_s?.signals ?? [], tc.signals_s?.signals ?? [], 'pending shared signals', c, undefined, itimerSignals(dumpedTc));
  }
  verifyTimers(task, tc, c);
  if (!main.scratchRange) main.mapScratch();
  const scratch = main.scratchRange as { addr: bigint; size: number };
  const answers = askThreads(n.threads, scratch.addr, scratch.size);
  n.threads.forEach((th, i) => {
    const core = task.cores[i];
    if (!core) return;
    const tst = parseStatus(pid, th.tid);
    const thc = dumpThreadCore(th, pid, tst, answers[i] as ThreadAnswers);
    for (const k of RESOURCE_KINDS) k.verifyView?.(pid, { tc: undefined, threadCores: [thc] });
    if (core.thread_core) {
      // Pending signals went in at the start of finalize; ours are a tracer's view, not stashed.
      diffValue(core.thread_core, thc, '', THREAD_SKIP, (f, a, b) => c.add(f, a, b, th.tid));
      verifySignals(core.thread_core.signals_p?.signals ?? [], thc.signals_p?.signals ?? [], 'pending signals', c, th.tid);
      const mode = core.thread_core.seccomp_mode;
      const modeNum = typeof mode === 'string' ? SECCOMP_MODES.indexOf(mode) : mode;
      if (modeNum !== undefined && modeNum !== tst.seccomp) c.add('seccomp mode', mode, SECCOMP_MODES[tst.seccomp] ?? tst.seccomp, th.tid);
    }
    const fp = core.thread_info?.fpregs;
    if (fp) diffValue(fp, dumpFpRegs(th), 'fpregs', new Set(), (f, a, b) => c.add(f, a, b, th.tid));
  });
  verifyFs(pid, task, img, st.umask, c);
  verifyFds(pid, task, img, c);
  verifyVmas(pid, task, main, c);
  verifyPages(pid, task, img, main, c);
  return c.diffs;
}

/** Registers and signal masks, once finalize wrote them (no injected call may follow). */
export function verifyRegisters(n: RestoreNode, interrupted: ReadonlySet<number>): VerifyDifference[] {
  const task = n.images;
  if (!task) return [];
  const c = new Collector(n.pid);
  n.threads.forEach((th, i) => {
    const core = task.cores[i];
    const g = core?.thread_info?.gpregs;
    if (!core || !g) return;
    const mask = core.thread_core?.blk_sigset ?? core.tc?.blk_sigset ?? task.cores[0]?.tc?.blk_sigset ?? 0n;
    const now = sigmaskNow(th.tid);
    if (now !== mask) c.add('blocked signals', mask, now, th.tid);
    if (interrupted.has(th.tid)) return;
    const regs = decodeGpRegs(th.currentRegs());
    for (const r of GP_REG_NAMES) {
      if (r === 'orig_ax') continue;
      const want = (g as unknown as Record<string, bigint>)[r];
      if (want !== undefined && BigInt.asUintN(64, want) !== BigInt.asUintN(64, regs[r])) c.add(`register ${r}`, want, regs[r], th.tid);
    }
  });
  return c.diffs;
}

/**
 * The path a regular file entry names. A ghost or link-remapped file is
 * reopened through an fd criu-ts holds (/proc/<our pid>/fd/N): the path is
 * the one that fd has.
 */
function fileName(e: FileEntry | undefined): string | undefined {
  const name = e?.reg?.name;
  if (name === undefined || !name.startsWith(`/proc/${process.pid}/fd/`)) return name;
  try {
    return readlinkSync(name).replace(/ \(deleted\)$/, '');
  } catch {
    return name;
  }
}

function verifyFs(pid: number, task: TaskImages, img: DumpImages, umask: number, c: Collector): void {
  const cwd = fileName(img.files.get(task.fs.cwd_id));
  const root = fileName(img.files.get(task.fs.root_id));
  const link = (what: string): string => readlinkSync(`/proc/${pid}/${what}`).replace(/ \(deleted\)$/, '');
  // The root is seen through our own root: a chrooted task's cwd link is relative to nothing we can compare; check the root.
  if (root !== undefined && link('root') !== root) c.add('root', root, link('root'));
  if (cwd !== undefined && (root === undefined || root === '/') && link('cwd') !== cwd) c.add('cwd', cwd, link('cwd'));
  if (task.fs.umask !== undefined && task.fs.umask !== umask) c.add('umask', `0${task.fs.umask.toString(8)}`, `0${umask.toString(8)}`);
}

/** How /proc/PID/fd/N reads for each kind of file. */
const LINK_PREFIX: Readonly<Partial<Record<FileEntry['type'], readonly string[]>>> = {
  PIPE: ['pipe:['],
  FIFO: ['/'],
  INETSK: ['socket:['],
  UNIXSK: ['socket:['],
  PACKETSK: ['socket:['],
  NETLINKSK: ['socket:['],
  EVENTFD: ['anon_inode:[eventfd]'],
  EVENTPOLL: ['anon_inode:[eventpoll]'],
  SIGNALFD: ['anon_inode:[signalfd]'],
  TIMERFD: ['anon_inode:[timerfd]'],
  INOTIFY: ['anon_inode:inotify'],
  FANOTIFY: ['anon_inode:[fanotify]'],
  MEMFD: ['/memfd:'],
  PIDFD: ['anon_inode:[pidfd]', 'pidfd:'],
  TTY: ['/dev/'],
};

function verifyFds(pid: number, task: TaskImages, img: DumpImages, c: Collector): void {
  const have = new Set(listFds(pid));
  const want = new Set(task.fds.map((f) => f.fd));
  for (const fd of have) if (!want.has(fd)) c.add(`fd ${fd}`, 'not open', readFdLink(pid, fd));
  for (const f of task.fds) {
    if (!have.has(f.fd)) {
      c.add(`fd ${f.fd}`, f.type, 'not open');
      continue;
    }
    const cloexecWant = ((f.flags ?? 0) & 1) !== 0;
    const cloexecHave = (parseFdinfo(pid, f.fd).flags & 0o2000000) !== 0;
    if (cloexecWant !== cloexecHave) c.add(`fd ${f.fd} close-on-exec`, cloexecWant, cloexecHave);
    const link = readFdLink(pid, f.fd);
    const e = img.files.get(f.id);
    if (f.type === 'REG') {
      const name = fileName(e);
      const got = link.replace(/ \(deleted\)$/, '');
      if (name !== undefined && got !== name) c.add(`fd ${f.fd} path`, name, link);
      continue;
    }
    const prefixes = LINK_PREFIX[f.type];
    if (prefixes && !prefixes.some((p) => link.startsWith(p))) c.add(`fd ${f.fd} kind`, f.type, link);
  }
}

interface VmaShape {
  start: bigint;
  end: bigint;
  prot: number;
  shared: boolean;
  anon: boolean;
  madv: bigint;
}

/** Adjacent pieces that agree in every compared respect are one range: the kernel merges or splits VMAs as it likes. */
function mergeShapes(list: VmaShape[]): VmaShape[] {
  const out: VmaShape[] = [];
  for (const v of [...list].sort((a, b) => (a.start < b.start ? -1 : 1))) {
    const last = out[out.length - 1];
    if (last && last.end === v.start && last.prot === v.prot && last.shared === v.shared && last.anon === v.anon && last.madv === v.madv) {
      last.end = v.end;
    } else out.push({ ...v });
  }
  return out;
}

const VMA_ANON = (1 << 8) | (1 << 9); // ANON_SHARED | ANON_PRIVATE
const MAP_SHARED = 1;
/** madvise bits the kernel shows in VmFlags (kinds/memory/vma.ts MADV_BY_VMFLAG): the others leave no trace to compare. */
const MADV_SEEN = [1, 2, 10, 12, 14, 15, 16, 18].reduce((m, b) => m | (1n << BigInt(b)), 0n);
const VMFLAG_MADV: Readonly<Record<string, number>> = { sr: 2, rr: 1, dc: 10, dd: 16, mg: 12, hg: 14, nh: 15, wf: 18 };

function shapeOfImage(v: VmaEntry): VmaShape {
  return {
    start: v.start, end: v.end, prot: v.prot, shared: (v.flags & MAP_SHARED) !== 0,
    anon: (v.status & VMA_ANON) !== 0 && (v.status & (1 << 14)) === 0, madv: (v.madv ?? 0n) & MADV_SEEN,
  };
}

function shapeOfSmaps(v: SmapsEntry): VmaShape {
  let madv = 0n;
  for (const f of v.vmFlags) {
    const a = VMFLAG_MADV[f];
    if (a !== undefined) madv |= 1n << BigInt(a);
  }
  const anon = v.path === '' || v.path === '[heap]' || v.path === '[stack]' || v.path.startsWith('[anon:') || v.path.startsWith('[anon_shmem:')
    || (v.path === '/dev/zero' && !(v.deleted && !v.shared)) // a private mapping of a shared object (via map_files) is a file mapping
    || v.path.startsWith('/SYSV') || v.path.startsWith('/anon_hugepage');
  return { start: v.start, end: v.end, prot: v.prot.value, shared: v.shared, anon, madv };
}

function verifyVmas(pid: number, task: TaskImages, main: Tracee, c: Collector): void {
  const scratch = main.scratchRange;
  const special = (p: string): boolean => p === '[vdso]' || p === '[vvar]' || p === '[vvar_vclock]' || p === '[vsyscall]' || p === '[uprobes]';
  const restored = parseSmaps(pid)
    .filter((v) => !(scratch && v.start === scratch.addr) && !special(v.path))
    .map(shapeOfSmaps);
  // The vDSO, vvar and vsyscall areas are the kernel's; guard-page and uprobe areas are not VMAs of the task's own.
  const kernels = (1 << 2) | (1 << 3) | (1 << 12) | (1 << 16) | (1 << 17); // vsyscall, vdso, vvar, guard, uprobes
  const dumped = (task.mm.vmas ?? []).filter((v) => (v.status & kernels) === 0).map(shapeOfImage);
  const a = mergeShapes(dumped);
  const b = mergeShapes(restored);
  const key = (v: VmaShape): string => `${v.start.toString(16)}-${v.end.toString(16)} prot ${v.prot} ${v.shared ? 'shared' : 'private'} ${v.anon ? 'anon' : 'file'} madv 0x${v.madv.toString(16)}`;
  const ka = a.map(key);
  const kb = new Set(b.map(key));
  for (const k of ka) if (!kb.has(k)) c.add('mapping', k, b.filter((v) => v.start < BigInt(`0x${k.split('-')[1]?.split(' ')[0] ?? '0'}`) && v.end > BigInt(`0x${k.split('-')[0] ?? '0'}`)).map(key).join('; ') || 'nothing there');
  const kaSet = new Set(ka);
  for (const v of b) if (!kaSet.has(key(v)) && !a.some((x) => x.start < v.end && x.end > v.start)) c.add('mapping', 'nothing there', key(v));
}

const PE_PARENT = 1;
const PE_PRESENT = 4;
const CHUNK = 1 << 20;

/** Every private page the dump saved, compared with the task's memory; the rseq areas' bytes are the kernel's. */
function verifyPages(pid: number, task: TaskImages, img: DumpImages, main: Tracee, c: Collector): void {
  const rseq = task.cores.flatMap((k) => {
    const r = k.thread_core?.rseq_entry;
    return r && r.rseq_abi_pointer !== 0n ? [{ lo: r.rseq_abi_pointer, hi: r.rseq_abi_pointer + BigInt(Math.max(32, r.rseq_abi_size)) }] : [];
  });
  const path = join(img.dir, `pages-${task.pagesId}.img`);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return; // the restore itself read it; an incremental dump's pages may live in the parent
  }
  const mine = Buffer.allocUnsafe(CHUNK);
  const theirs = Buffer.allocUnsafe(CHUNK);
  let mem: ProcMem | undefined;
  let off = 0;
  let reported = 0;
  try {
    for (const e of task.pagemap as PagemapEntry[]) {
      const flags = e.flags ?? PE_PRESENT;
      const bytes = Number(e.nr_pages ?? 0n) * PAGE_SIZE;
      if ((flags & PE_PARENT) !== 0 || (flags & PE_PRESENT) === 0) continue;
      for (let done = 0; done < bytes; done += CHUNK) {
        const len = Math.min(CHUNK, bytes - done);
        const addr = e.vaddr + BigInt(done);
        let got = 0;
        while (got < len) {
          const r = readSync(fd, mine, got, len - got, off + done + got);
          if (r === 0) break;
          got += r;
        }
        // Through /proc/PID/mem, never process_vm_readv: that pins the pages
        // it reads, and pinning an anonymous page a parent and child share
        // copies it (the copy-on-write sharing the restore kept would go).
        mem ??= new ProcMem(pid);
        let n = 0;
        while (n < len) {
          const r = mem.read(addr + BigInt(n), theirs, n, len - n);
          if (r <= 0) break;
          n += r;
        }
        if (n === len && mine.subarray(0, len).equals(theirs.subarray(0, len))) continue;
        for (let p = 0; p < len && reported < 3; p += PAGE_SIZE) {
          const pa = addr + BigInt(p);
          const a = mine.subarray(p, p + PAGE_SIZE);
          const b = theirs.subarray(p, p + PAGE_SIZE);
          if (a.equals(b)) continue;
          let i = 0;
          while (i < PAGE_SIZE && a[i] === b[i]) i++;
          const at = pa + BigInt(i);
          if (rseq.some((r) => at >= r.lo && at < r.hi)) {
            // Only the rseq bytes differ? Compare the page with them masked.
            const a2 = Buffer.from(a);
            const b2 = Buffer.from(b);
            for (const r of rseq) {
              for (let q = r.lo; q < r.hi; q++) if (q >= pa && q < pa + BigInt(PAGE_SIZE)) a2[Number(q - pa)] = b2[Number(q - pa)] ?? 0;
            }
            if (a2.equals(b2)) continue;
          }
          c.add(`memory at 0x${at.toString(16)}`, `byte 0x${(a[i] ?? 0).toString(16)}`, `byte 0x${(b[i] ?? 0).toString(16)}`);
          reported++;
        }
      }
      off += bytes;
    }
  } finally {
    closeSync(fd);
    mem?.close();
  }
  void main;
}

/** Act on the differences: refuse (throw, the restore then kills every task) or, with `warn`, log them. */
export function judge(diffs: readonly VerifyDifference[], mode: 'refuse' | 'warn'): void {
  if (diffs.length === 0) return;
  if (mode === 'warn') {
    for (const d of diffs) log.warn(`verify: ${describeDifference(d)}`);
    return;
  }
  // Refused: the error line says the first; the rest go to the log (-v3), so a user reads one line.
  for (const d of diffs) log.info(`verify: ${describeDifference(d)}`);
  const first = diffs[0] as VerifyDifference;
  const more = diffs.length > 1 ? ` (and ${diffs.length - 1} more difference(s), logged at -v3)` : '';
  throw new CriuTsError('ERESTORE', `restore --verify: ${describeDifference(first)}${more}`, { differences: diffs });
}
