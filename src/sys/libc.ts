/**
 * The one place that loads koffi and binds libc. Everything goes through the
 * raw `syscall(2)` entry with pointer-sized integer arguments: buffers are
 * passed by address (the caller keeps the Buffer alive for the call), so one
 * binding serves every syscall and no per-call marshalling is needed.
 * Typed wrappers live in the sibling modules; nothing outside src/sys imports this.
 */
import koffi from 'koffi';
import { SyscallError } from './error.js';

const libc = koffi.load('libc.so.6');

type Arg = number | bigint;
const rawSyscall = libc.func(
  'long syscall(long n, intptr_t a1, intptr_t a2, intptr_t a3, intptr_t a4, intptr_t a5, intptr_t a6)',
) as (n: number, a1: Arg, a2: Arg, a3: Arg, a4: Arg, a5: Arg, a6: Arg) => number | bigint;

/** Address of a Buffer's bytes, to pass as a pointer argument. */
export function addr(buf: Buffer | Uint8Array | BigUint64Array | Int32Array | Uint32Array): bigint {
  return koffi.address(buf) as bigint;
}

/** A view of native memory at `ptr` (used for nothing but tests of the boundary). */
export function errno(): number {
  return koffi.errno() as number;
}

/**
 * Raw syscall: returns the kernel's result or throws SyscallError. `pid` only
 * labels the error. Results wider than 2^53 (never for the calls we use as
 * numbers) come back as bigint; callers that need addresses use syscallBig.
 */
export function sys(name: string, nr: number, pid: number | undefined, ...args: Arg[]): number {
  const r = rawSyscall(nr, args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0);
  const v = typeof r === 'bigint' ? Number(r) : r;
  if (v === -1) throw new SyscallError(name, errno(), pid);
  return v;
}

/** Like sys() but returns the raw value as bigint (for ptrace PEEK results and addresses). */
export function sysBig(name: string, nr: number, pid: number | undefined, ...args: Arg[]): bigint {
  const r = rawSyscall(nr, args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0);
  const v = BigInt(r);
  if (v === -1n) {
    const e = errno();
    if (e !== 0) throw new SyscallError(name, e, pid);
  }
  return v;
}

/** Returns -errno instead of throwing: for probes where failure is an answer, not an error. */
export function sysTry(nr: number, ...args: Arg[]): number {
  const r = rawSyscall(nr, args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0);
  const v = typeof r === 'bigint' ? Number(r) : r;
  return v === -1 ? -errno() : v;
}

/** Clear errno before a call whose -1 may be a valid result (PTRACE_PEEK*). */
export function clearErrno(): void {
  koffi.errno(0);
}
