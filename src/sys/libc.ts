/**
 * The one place that loads koffi and binds libc. Everything goes through the
 * raw `syscall(2)` entry with pointer-sized integer arguments: buffers are
 * passed by address (the caller keeps the Buffer alive for the call), so one
 * binding serves every syscall and no per-call marshalling is needed.
 * Typed wrappers live in the sibling modules; nothing outside src/sys imports this.
 */
import { createRequire } from 'node:module';
import { SyscallError } from './error.js';
import { NR } from './nr.js';
import { PROT_READ, PROT_WRITE, PROT_EXEC, MAP_PRIVATE, MAP_ANONYMOUS } from './mman.js';

type Koffi = typeof import('koffi');

/**
 * koffi's addon, loaded directly where it can be: the package's index.js
 * first loads its installer's helpers (node:https, node:zlib,
 * node:crypto), about 2 MiB of RSS and some milliseconds of every run for
 * code criu-ts never calls, then wraps the addon only to add deprecated
 * aliases. The addon is taken from where the package keeps it for this
 * platform and used only if it is the package's own version; anything
 * else (another layout, musl) goes through the package as before.
 */
function loadKoffi(): Koffi {
  const req = createRequire(import.meta.url);
  try {
    const version = (req('koffi/package.json') as { version?: string }).version;
    const addon = req(`koffi/build/koffi/${process.platform}_${process.arch}/koffi.node`) as Koffi & { version?: string };
    if (addon.version === version && typeof addon.load === 'function') return addon;
  } catch {
    // not there: the package finds it
  }
  return req('koffi') as Koffi;
}

type Arg = number | bigint;
type RawSyscall = (n: number, a1: Arg, a2: Arg, a3: Arg, a4: Arg, a5: Arg, a6: Arg) => number | bigint;
type RawSyscallPtr = (n: number, a1: Arg, a2: Arg, a3: Arg, a4: Arg, a5: Arg, a6: Arg) => unknown;

/**
 * koffi, libc and the syscall(2) bindings are made by the first call that
 * needs them, not when this module is evaluated: loading the addon and
 * libc costs a few milliseconds of every run, and `criu-ts --help`, `-V`
 * and a usage error never make a syscall (docs/performance.md, "Start-up,
 * session 13"). Each binding is a module variable that its first use
 * replaces with the real thing, so later calls cost what they did.
 */
let koffiLoaded: Koffi | undefined;
let libcLoaded: ReturnType<Koffi['load']> | undefined;
function K(): Koffi {
  return (koffiLoaded ??= loadKoffi());
}
function libc(): ReturnType<Koffi['load']> {
  return (libcLoaded ??= K().load('libc.so.6'));
}

let boundSyscall: RawSyscall | undefined;
function bindSyscall(): RawSyscall {
  boundSyscall = libc().func('long syscall(long n, intptr_t a1, intptr_t a2, intptr_t a3, intptr_t a4, intptr_t a5, intptr_t a6)') as RawSyscall;
  rawSyscall = boundSyscall;
  return boundSyscall;
}
let rawSyscall: RawSyscall = (n, a1, a2, a3, a4, a5, a6) => bindSyscall()(n, a1, a2, a3, a4, a5, a6);

/**
 * A libc function other than syscall(2), bound on its first use (a run
 * that never needs it pays nothing). Only for what a raw syscall cannot
 * do from Node: posix_spawn's vfork-and-exec (sys/spawn.ts).
 */
type LibcFunction = (...args: any[]) => any;
const bound = new Map<string, LibcFunction>();
export function libcFunction(decl: string): LibcFunction {
  let f = bound.get(decl);
  if (f === undefined) {
    f = libc().func(decl) as LibcFunction;
    bound.set(decl, f);
  }
  return f;
}

/**
 * mmap(2) `len` bytes of `fd` from offset 0 with `prot`/`flags`: the
 * address, and a Buffer over the mapping (no copy: valid until the caller
 * unmaps it, never after). Throws SyscallError('mmap').
 */
export function mmapView(fd: number, len: number, prot: number, flags: number): { addr: bigint; bytes: Buffer } {
  // syscall(2) returning a pointer: koffi views memory only through a pointer it made.
  const p = rawSyscallPtr(NR.mmap, 0, len, prot, flags, fd, 0);
  const at = BigInt(K().address(p) as bigint);
  if (at === 0n || at > 0xfffffffffffff000n) throw new SyscallError('mmap', errno());
  return { addr: at, bytes: Buffer.from(K().view(p, len) as ArrayBuffer) };
}

/**
 * A function the running program itself exports (node's own symbols, the
 * OpenSSL it is built with among them), or undefined when it has none by
 * that name or cannot be looked into. Bound once per declaration.
 */
let programLoaded: ReturnType<Koffi['load']> | undefined;
export function programFunction(decl: string): LibcFunction | undefined {
  let f = bound.get(decl);
  if (f !== undefined) return f;
  try {
    programLoaded ??= K().load(null);
    f = programLoaded.func(decl) as LibcFunction;
  } catch {
    return undefined;
  }
  bound.set(decl, f);
  return f;
}

/** Address of a Buffer's bytes, to pass as a pointer argument. */
export function addr(buf: Buffer | Uint8Array | BigUint64Array | Int32Array | Uint32Array): bigint {
  return K().address(buf) as bigint;
}

/** A view of native memory at `ptr` (used for nothing but tests of the boundary). */
export function errno(): number {
  return K().errno() as number;
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

/**
 * Raw syscall on one of koffi's worker threads (libuv's pool): resolves
 * with the kernel's result as syscall(2) returns it, -1 on failure with
 * no errno (errno is the worker thread's, not ours): for calls whose
 * error a caller can learn otherwise (UFFDIO_COPY writes it into its
 * argument). Buffers passed by address must stay alive until it settles.
 */
export function sysAsync(nr: number, ...args: Arg[]): Promise<number> {
  return new Promise((resolve, reject) => {
    ((boundSyscall ?? bindSyscall()) as unknown as { async: (...a: unknown[]) => void }).async(
      nr, args[0] ?? 0, args[1] ?? 0, args[2] ?? 0, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0,
      (err: unknown, r: number | bigint) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve(typeof r === 'bigint' ? Number(r) : r);
      },
    );
  });
}

/** Clear errno before a call whose -1 may be a valid result (PTRACE_PEEK*). */
export function clearErrno(): void {
  K().errno(0);
}

let rawSyscallPtr: RawSyscallPtr = (n, a1, a2, a3, a4, a5, a6) => {
  rawSyscallPtr = libc().func('void *syscall(long n, intptr_t a1, intptr_t a2, intptr_t a3, intptr_t a4, intptr_t a5, intptr_t a6)') as RawSyscallPtr;
  return rawSyscallPtr(n, a1, a2, a3, a4, a5, a6);
};
let native3: ReturnType<Koffi['proto']> | undefined;
const MAP_FAILED = -1n;

/**
 * A function of three pointer-sized arguments made of `code` (machine code
 * of this architecture), in a page of our own process mapped for it alone:
 * written while writable, then made read+exec (never both). For the few
 * things no syscall(2) call can do from Node (a clone whose child must run
 * code of ours, not return into the caller's stack; see clone-parent.ts).
 * The page stays mapped for the life of the process.
 */
export function nativeFunction3(code: Uint8Array): (a1: Arg, a2: Arg, a3: Arg) => bigint {
  const len = 4096;
  if (code.length > len) throw new RangeError(`native code of ${code.length} bytes: one page at most`);
  const page = rawSyscallPtr(NR.mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  const at = K().address(page) as bigint;
  if (at === MAP_FAILED || at === 0n) throw new SyscallError('mmap', errno(), undefined);
  new Uint8Array(K().view(page, len)).set(code);
  sys('mprotect', NR.mprotect, undefined, at, len, PROT_READ | PROT_EXEC);
  const proto = (native3 ??= K().proto('long criu_ts_native3(intptr_t a1, intptr_t a2, intptr_t a3)'));
  return (a1, a2, a3) => BigInt(K().call(page, proto, a1, a2, a3) as number | bigint);
}
