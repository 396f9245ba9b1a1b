/**
 * ptrace(2) and wait4(2), typed. Every call throws SyscallError naming the
 * request and the tid. Layout facts: include/uapi/linux/ptrace.h.
 */
import { sys, sysBig, sysTry, addr, clearErrno } from './libc.js';
import { NR } from './nr.js';
import { USER_REGS_SIZE } from './arch-x86.js';
import { SyscallError } from './error.js';

export const PTRACE = {
  PEEKDATA: 2, POKEDATA: 5, CONT: 7, KILL: 8, SINGLESTEP: 9, ATTACH: 16, DETACH: 17, SYSCALL: 24,
  SETOPTIONS: 0x4200, GETEVENTMSG: 0x4201, GETSIGINFO: 0x4202, SETSIGINFO: 0x4203,
  GETREGSET: 0x4204, SETREGSET: 0x4205, SEIZE: 0x4206, INTERRUPT: 0x4207, LISTEN: 0x4208,
  PEEKSIGINFO: 0x4209, GETSIGMASK: 0x420a, SETSIGMASK: 0x420b, SECCOMP_GET_FILTER: 0x420c,
  GET_SYSCALL_INFO: 0x420e, GET_RSEQ_CONFIGURATION: 0x420f,
} as const;

export const PTRACE_O = {
  TRACESYSGOOD: 1, TRACEFORK: 2, TRACEVFORK: 4, TRACECLONE: 8, TRACEEXEC: 0x10,
  TRACEVFORKDONE: 0x20, TRACEEXIT: 0x40, TRACESECCOMP: 0x80, EXITKILL: 0x100000,
  SUSPEND_SECCOMP: 0x200000,
} as const;

export const PTRACE_EVENT = { FORK: 1, VFORK: 2, CLONE: 3, EXEC: 4, VFORK_DONE: 5, EXIT: 6, SECCOMP: 7, STOP: 128 } as const;

export const NT_PRSTATUS = 1;
export const NT_X86_XSTATE = 0x202;
export const SIGINFO_SIZE = 128;

function req(name: string, request: number, tid: number, a: number | bigint, d: number | bigint): number {
  return sys(`ptrace(${name})`, NR.ptrace, tid, request, tid, a, d);
}

export function ptraceSeize(tid: number, options: number): void {
  req('SEIZE', PTRACE.SEIZE, tid, 0, options);
}
export function ptraceInterrupt(tid: number): void {
  req('INTERRUPT', PTRACE.INTERRUPT, tid, 0, 0);
}
export function ptraceSetOptions(tid: number, options: number): void {
  req('SETOPTIONS', PTRACE.SETOPTIONS, tid, 0, options);
}
export function ptraceCont(tid: number, sig = 0): void {
  req('CONT', PTRACE.CONT, tid, 0, sig);
}
export function ptraceSyscall(tid: number, sig = 0): void {
  req('SYSCALL', PTRACE.SYSCALL, tid, 0, sig);
}
export function ptraceSingleStep(tid: number, sig = 0): void {
  req('SINGLESTEP', PTRACE.SINGLESTEP, tid, 0, sig);
}
export function ptraceListen(tid: number): void {
  req('LISTEN', PTRACE.LISTEN, tid, 0, 0);
}
export function ptraceDetach(tid: number, sig = 0): void {
  req('DETACH', PTRACE.DETACH, tid, 0, sig);
}
/** Detach, tolerating a task that is already gone (ESRCH). */
export function ptraceDetachQuiet(tid: number, sig = 0): boolean {
  return sysTry(NR.ptrace, PTRACE.DETACH, tid, 0, sig) === 0;
}

export function ptraceGetEventMsg(tid: number): bigint {
  const b = Buffer.alloc(8);
  req('GETEVENTMSG', PTRACE.GETEVENTMSG, tid, 0, addr(b));
  return b.readBigUInt64LE(0);
}

export function ptraceGetSiginfo(tid: number): Buffer {
  const b = Buffer.alloc(SIGINFO_SIZE);
  req('GETSIGINFO', PTRACE.GETSIGINFO, tid, 0, addr(b));
  return b;
}
export function ptraceSetSiginfo(tid: number, si: Buffer): void {
  req('SETSIGINFO', PTRACE.SETSIGINFO, tid, 0, addr(si));
}

// One read buffer for every GETREGSET: callers ask for the largest size a
// regset can have (16 KiB of XSAVE) and get a copy of what the kernel
// filled (11 KiB with AMX). A subarray of a fresh buffer per call kept the
// whole 16 KiB alive per thread: 32 MiB of a 1000-thread dump.
let regsetScratch = Buffer.alloc(0);

/** Read a regset (NT_PRSTATUS or NT_X86_XSTATE) of at most `size` bytes; returns a copy of the bytes the kernel filled. */
export function ptraceGetRegset(tid: number, type: number, size: number): Buffer {
  const view = ptraceGetRegsetView(tid, type, size);
  // An exact copy with memory of its own: a small Buffer.from() is cut
  // from an 8 KiB pool slab, and registers kept per thread (1000 threads)
  // would keep a slab alive for every few of them.
  const out = Buffer.allocUnsafeSlow(view.length);
  view.copy(out);
  return out;
}

/**
 * Like ptraceGetRegset, but the bytes stay in a buffer shared by every
 * read: valid until the next regset read. For what is used at once and
 * dropped (an XSAVE area per thread is 11 KiB with AMX: as fresh copies,
 * 1000 threads left 11 MiB for the garbage collector to find).
 */
export function ptraceGetRegsetView(tid: number, type: number, size: number): Buffer {
  if (regsetScratch.length < size) regsetScratch = Buffer.alloc(size);
  const data = regsetScratch;
  regsetIov.writeBigUInt64LE(addr(data), 0);
  regsetIov.writeBigUInt64LE(BigInt(size), 8);
  req('GETREGSET', PTRACE.GETREGSET, tid, type, addr(regsetIov));
  return data.subarray(0, Number(regsetIov.readBigUInt64LE(8)));
}
const regsetIov = Buffer.alloc(16);
const setRegsetIov = Buffer.alloc(16);
export function ptraceSetRegset(tid: number, type: number, data: Buffer): void {
  const iov = setRegsetIov;
  iov.writeBigUInt64LE(addr(data), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  req('SETREGSET', PTRACE.SETREGSET, tid, type, addr(iov));
}
export function getGpRegsRaw(tid: number): Buffer {
  return ptraceGetRegset(tid, NT_PRSTATUS, USER_REGS_SIZE);
}
export function setGpRegsRaw(tid: number, regs: Buffer): void {
  ptraceSetRegset(tid, NT_PRSTATUS, regs);
}

export function ptraceGetSigmask(tid: number): bigint {
  const b = Buffer.alloc(8);
  req('GETSIGMASK', PTRACE.GETSIGMASK, tid, 8, addr(b));
  return b.readBigUInt64LE(0);
}
export function ptraceSetSigmask(tid: number, mask: bigint): void {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, mask), 0);
  req('SETSIGMASK', PTRACE.SETSIGMASK, tid, 8, addr(b));
}

/**
 * Peek queued signals without dequeuing them: the per-thread queue, or the
 * process-wide shared queue with `shared`. Returns raw 128-byte siginfos.
 */
/** PEEKSIGINFO's answer and arguments: one pair for every call (4 KiB per thread was a 1000-thread dump's garbage). */
const PEEK_BATCH = 32;
const peekBuf = Buffer.alloc(SIGINFO_SIZE * PEEK_BATCH);
const peekArgs = Buffer.alloc(16);

export function ptracePeekSiginfo(tid: number, shared: boolean): Buffer[] {
  const out: Buffer[] = [];
  const batch = PEEK_BATCH;
  const buf = peekBuf;
  const args = peekArgs;
  for (let off = 0; ; off += batch) {
    args.writeBigUInt64LE(BigInt(off), 0);
    args.writeUInt32LE(shared ? 1 : 0, 8);
    args.writeInt32LE(batch, 12);
    const n = req('PEEKSIGINFO', PTRACE.PEEKSIGINFO, tid, addr(args), addr(buf));
    for (let i = 0; i < n; i++) out.push(Buffer.from(buf.subarray(i * SIGINFO_SIZE, (i + 1) * SIGINFO_SIZE)));
    if (n < batch) return out;
  }
}

export interface RseqConfig {
  rseqAbiPointer: bigint;
  rseqAbiSize: number;
  signature: number;
  flags: number;
}
export function ptraceGetRseqConfig(tid: number): RseqConfig {
  const b = Buffer.alloc(24);
  req('GET_RSEQ_CONFIGURATION', PTRACE.GET_RSEQ_CONFIGURATION, tid, 24, addr(b));
  return {
    rseqAbiPointer: b.readBigUInt64LE(0),
    rseqAbiSize: b.readUInt32LE(8),
    signature: b.readUInt32LE(12),
    flags: b.readUInt32LE(16),
  };
}

/** Read a seccomp filter program (BPF instructions, 8 bytes each) by index; returns null past the last. */
export function ptraceSeccompGetFilter(tid: number, index: number): Buffer | null {
  const n = sysTry(NR.ptrace, PTRACE.SECCOMP_GET_FILTER, tid, index, 0);
  if (n < 0) return null;
  const b = Buffer.alloc(n * 8);
  req('SECCOMP_GET_FILTER', PTRACE.SECCOMP_GET_FILTER, tid, index, addr(b));
  return b;
}

export function ptracePeekData(tid: number, address: bigint): bigint {
  const b = Buffer.alloc(8);
  clearErrno();
  req('PEEKDATA', PTRACE.PEEKDATA, tid, address, addr(b));
  return b.readBigUInt64LE(0);
}
export function ptracePokeData(tid: number, address: bigint, word: bigint): void {
  sysBig('ptrace(POKEDATA)', NR.ptrace, tid, PTRACE.POKEDATA, tid, address, BigInt.asIntN(64, word));
}

// ---- wait4 ----

export const WNOHANG = 1;
export const WUNTRACED = 2;
export const WCONTINUED = 8;
export const __WNOTHREAD = 0x20000000;
export const __WALL = 0x40000000;

export interface WaitStatus {
  pid: number;
  raw: number;
  exited: boolean;
  exitCode: number;
  signaled: boolean;
  termSig: number;
  stopped: boolean;
  stopSig: number;
  /** PTRACE_EVENT_* carried in bits 16..23 of a ptrace stop, else 0 */
  event: number;
}

export function decodeWaitStatus(pid: number, s: number): WaitStatus {
  const low = s & 0x7f;
  const stopped = (s & 0xff) === 0x7f;
  return {
    pid,
    raw: s,
    exited: low === 0,
    exitCode: (s >> 8) & 0xff,
    signaled: low !== 0 && low !== 0x7f,
    termSig: low,
    stopped,
    stopSig: stopped ? (s >> 8) & 0xff : 0,
    event: stopped ? (s >>> 16) & 0xff : 0,
  };
}

const statusBuf = Buffer.alloc(4);
/** wait4; returns null with WNOHANG when nothing is ready. Retries EINTR. */
export function waitPid(pid: number, options: number): WaitStatus | null {
  for (;;) {
    const r = sysTry(NR.wait4, pid, addr(statusBuf), options, 0);
    if (r === -4) continue; // EINTR
    if (r < 0) throw new SyscallError('wait4', -r, pid);
    if (r === 0) return null;
    return decodeWaitStatus(r, statusBuf.readInt32LE(0));
  }
}

/** PTRACE_SECCOMP_GET_METADATA: the flags a filter was installed with (SECCOMP_FILTER_FLAG_*). */
export function ptraceSeccompFilterFlags(tid: number, index: number): number {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(index), 0);
  const r = sysTry(NR.ptrace, 0x420d, tid, 16, addr(b));
  return r < 0 ? 0 : Number(b.readBigUInt64LE(8));
}
