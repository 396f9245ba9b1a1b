/**
 * A task born our caller's child: clone3 with CLONE_PARENT from criu-ts's
 * own process (CRIU's --restore-sibling, RPC rst_sibling: the restored root
 * must be a child of whoever ran criu, which then waits for it itself).
 * Only our own process can make such a child (CLONE_PARENT gives the new
 * task its caller's parent, so a helper of ours would make a child of
 * ours), and Node cannot fork: the child of a raw clone would return into
 * Node's stack and run JavaScript in a copy of a multithreaded process.
 *
 * So the clone is made by a few instructions of our own (x86-64), run as a
 * native function in a page of our process (libc.ts nativeFunction3): the
 * child shares our memory (CLONE_VM), has every signal handler reset
 * (CLONE_CLEAR_SIGHAND: none of Node's handlers can run in it), touches no
 * stack and no memory but the execve arguments we prepared, and execs a
 * program at once; we sleep until it has (CLONE_VFORK), exactly as
 * posix_spawn does. What it runs afterwards is an ordinary process of its
 * own, the caller's child, which the restore then seizes and makes the
 * tree's root. Nothing is injected into any process here, and no code runs
 * in a target.
 */
import { addr, nativeFunction3 } from './libc.js';
import { SyscallError } from './error.js';

export const CLONE_VM = 0x100n;
export const CLONE_VFORK = 0x4000n;
export const CLONE_PARENT = 0x8000n;
export const CLONE_FILES = 0x400n;
export const CLONE_CLEAR_SIGHAND = 0x100000000n;
/** clone_args.child_tid becomes the new thread's clear_child_tid (what set_tid_address sets). */
export const CLONE_CHILD_CLEARTID = 0x200000n;

/**
 * long f(struct clone_args *args, size_t size, void *exec[3]):
 *   r8 = exec; rax = clone3(args, size)
 *   parent (rax != 0): return rax (the child's pid, or -errno)
 *   child: execve(exec[0], exec[1], exec[2]); exit(127)
 * Only rax, rcx and r11 change across a syscall, so r8 survives into the
 * child, which runs on our stack pointer without using the stack (we are
 * stopped in the kernel until it execs or exits).
 */
const CODE = Buffer.from([
  0x49, 0x89, 0xd0, //             mov r8, rdx
  0xb8, 0xb3, 0x01, 0x00, 0x00, // mov eax, 435 (clone3)
  0x0f, 0x05, //                   syscall
  0x48, 0x85, 0xc0, //             test rax, rax
  0x74, 0x01, //                   jz child
  0xc3, //                         ret
  0x49, 0x8b, 0x38, //             child: mov rdi, [r8]
  0x49, 0x8b, 0x70, 0x08, //       mov rsi, [r8+8]
  0x49, 0x8b, 0x50, 0x10, //       mov rdx, [r8+16]
  0xb8, 0x3b, 0x00, 0x00, 0x00, // mov eax, 59 (execve)
  0x0f, 0x05, //                   syscall
  0xbf, 0x7f, 0x00, 0x00, 0x00, // mov edi, 127
  0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
  0x0f, 0x05, //                   syscall
  0x0f, 0x0b, //                   ud2
]);

let cloneExec: ((a1: bigint, a2: number, a3: bigint) => bigint) | undefined;
let pinned: unknown;

/** struct clone_args (CLONE_ARGS_SIZE_VER2: up to cgroup). */
export const CLONE_ARGS_SIZE = 88;

/**
 * Make a task whose parent is our parent, with `flags` (namespaces) and,
 * when `setTid` is not 0, that pid at its innermost pid namespace level
 * (1 with CLONE_NEWPID), running `argv` of `prog` (environment empty).
 * Returns its pid in our namespace once it has exec'd or died trying (a
 * child that could not exec exits 127, a zombie of our caller: check
 * /proc/PID/exe). Throws SyscallError('clone3') with the kernel's errno.
 */
export function cloneParentExec(flags: bigint, setTid: number, prog: string, argv: readonly string[]): number {
  if ((flags & (CLONE_VM | CLONE_FILES | CLONE_PARENT)) !== 0n) throw new RangeError('cloneParentExec: flags must hold only namespaces');
  cloneExec ??= nativeFunction3(CODE);
  const args = Buffer.alloc(CLONE_ARGS_SIZE + 8);
  args.writeBigUInt64LE(flags | CLONE_VM | CLONE_VFORK | CLONE_PARENT | CLONE_CLEAR_SIGHAND, 0);
  // exit_signal (offset 32) stays 0: the kernel refuses one with CLONE_PARENT (the child takes ours).
  if (setTid !== 0) {
    args.writeBigInt64LE(BigInt(setTid), CLONE_ARGS_SIZE);
    args.writeBigUInt64LE(addr(args) + BigInt(CLONE_ARGS_SIZE), 64); // set_tid
    args.writeBigUInt64LE(1n, 72); // set_tid_size
  }
  const strings = [prog, ...argv].map((s) => Buffer.from(`${s}\0`));
  const argvArr = new BigUint64Array(argv.length + 1);
  strings.slice(1).forEach((b, i) => { argvArr[i] = addr(b); });
  const envp = new BigUint64Array(1);
  const exec = new BigUint64Array([addr(strings[0] as Buffer), addr(argvArr), addr(envp)]);
  // Held from a module variable for the call: nothing the child reads may be collected under it.
  pinned = [strings, argvArr, envp, exec, args];
  let r: bigint;
  try {
    r = cloneExec(addr(args), CLONE_ARGS_SIZE, addr(exec));
  } finally {
    pinned = undefined;
  }
  if (r < 0n) throw new SyscallError('clone3', Number(-r), undefined);
  return Number(r);
}
