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
import { SyscallError, isSyscallError } from './error.js';
import { EINTR } from './errno.js';
import { O_CLOEXEC } from './fcntl.js';
import { PR, close, closeQuiet, pipe2, prctl, read, write } from './process.js';

export const CLONE_VM = 0x100n;
export const CLONE_VFORK = 0x4000n;
export const CLONE_PARENT = 0x8000n;
export const CLONE_FILES = 0x400n;
export const CLONE_CLEAR_SIGHAND = 0x100000000n;
/** clone_args.child_tid becomes the new thread's clear_child_tid (what set_tid_address sets). */
export const CLONE_CHILD_CLEARTID = 0x200000n;

/**
 * long f(struct clone_args *args, size_t size, u64 exec[6]):
 *   r8 = exec; rax = clone3(args, size)
 *   parent (rax != 0): return rax (the child's pid, or -errno)
 *   child, when exec[5] (the gate's write end) is not negative: close it,
 *     read one byte from exec[3] (the gate's read end) into exec[4]; on
 *     anything but one byte, exit(127); on the byte 1, setresgid(0, 0, 0)
 *     and setresuid(0, 0, 0) (exit(127) if either fails);
 *   then execve(exec[0], exec[1], exec[2]); exit(127)
 * Only rax, rcx and r11 change across a syscall, so r8 survives into the
 * child, which runs on our stack pointer without using the stack (with
 * CLONE_VFORK we are stopped in the kernel until it execs or exits;
 * without it the child only makes syscalls, writes no memory but the
 * gate's byte, and takes no signal on a handler: CLONE_CLEAR_SIGHAND).
 */
const CODE = Buffer.from([
  0x49, 0x89, 0xd0, //             0: mov r8, rdx
  0xb8, 0xb3, 0x01, 0x00, 0x00, // 3: mov eax, 435 (clone3)
  0x0f, 0x05, //                   8: syscall
  0x48, 0x85, 0xc0, //             10: test rax, rax
  0x74, 0x01, //                   13: jz child (16)
  0xc3, //                         15: ret
  0x49, 0x8b, 0x78, 0x28, //       16: child: mov rdi, [r8+40]
  0x48, 0x85, 0xff, //             20: test rdi, rdi
  0x78, 0x49, //                   23: js exec (98): no gate
  0xb8, 0x03, 0x00, 0x00, 0x00, // 25: mov eax, 3 (close)
  0x0f, 0x05, //                   30: syscall
  0x49, 0x8b, 0x78, 0x18, //       32: mov rdi, [r8+24]
  0x49, 0x8d, 0x70, 0x20, //       36: lea rsi, [r8+32]
  0xba, 0x01, 0x00, 0x00, 0x00, // 40: mov edx, 1
  0x31, 0xc0, //                   45: xor eax, eax (read)
  0x0f, 0x05, //                   47: syscall
  0x48, 0x83, 0xf8, 0x01, //       49: cmp rax, 1
  0x75, 0x3d, //                   53: jne die (116)
  0x41, 0x80, 0x78, 0x20, 0x01, // 55: cmp byte [r8+32], 1
  0x75, 0x24, //                   60: jne exec (98)
  0x31, 0xff, //                   62: xor edi, edi
  0x31, 0xf6, //                   64: xor esi, esi
  0x31, 0xd2, //                   66: xor edx, edx
  0xb8, 0x77, 0x00, 0x00, 0x00, // 68: mov eax, 119 (setresgid)
  0x0f, 0x05, //                   73: syscall
  0x48, 0x85, 0xc0, //             75: test rax, rax
  0x75, 0x24, //                   78: jnz die (116)
  0x31, 0xff, //                   80: xor edi, edi
  0x31, 0xf6, //                   82: xor esi, esi
  0x31, 0xd2, //                   84: xor edx, edx
  0xb8, 0x75, 0x00, 0x00, 0x00, // 86: mov eax, 117 (setresuid)
  0x0f, 0x05, //                   91: syscall
  0x48, 0x85, 0xc0, //             93: test rax, rax
  0x75, 0x12, //                   96: jnz die (116)
  0x49, 0x8b, 0x38, //             98: exec: mov rdi, [r8]
  0x49, 0x8b, 0x70, 0x08, //       101: mov rsi, [r8+8]
  0x49, 0x8b, 0x50, 0x10, //       105: mov rdx, [r8+16]
  0xb8, 0x3b, 0x00, 0x00, 0x00, // 109: mov eax, 59 (execve)
  0x0f, 0x05, //                   114: syscall
  0xbf, 0x7f, 0x00, 0x00, 0x00, // 116: die: mov edi, 127
  0xb8, 0x3c, 0x00, 0x00, 0x00, // 121: mov eax, 60 (exit)
  0x0f, 0x05, //                   126: syscall
  0x0f, 0x0b, //                   128: ud2
]);

/**
 * What must be done to the new task from outside between its birth and
 * its first program (a new user namespace's id maps, which only a task
 * outside can write). Called with its pid in our namespace; returns true
 * to have it take uid and gid 0 of its namespace before it execs, so that
 * it keeps its capabilities there across the exec.
 */
export type BeforeExec = (pid: number) => boolean;

let cloneExec: ((a1: bigint, a2: number, a3: bigint) => bigint) | undefined;
let pinned: unknown;

/** struct clone_args (CLONE_ARGS_SIZE_VER2: up to cgroup). */
export const CLONE_ARGS_SIZE = 88;

/**
 * Make a task whose parent is our parent, with `flags` (namespaces) and,
 * when `setTid` is not 0, that pid at its innermost pid namespace level
 * (1 with CLONE_NEWPID), running `argv` of `prog` (environment empty).
 * With `beforeExec`, the child waits on a pipe until it has run (see
 * BeforeExec); we then wait, on a close-on-exec pipe the child holds,
 * until it has exec'd or died, as CLONE_VFORK would. If `beforeExec`
 * throws, the child exits 127 without running anything and the error is
 * thrown on.
 * Returns its pid in our namespace once it has exec'd or died trying (a
 * child that could not exec exits 127, a zombie of our caller: check
 * /proc/PID/exe). Throws SyscallError('clone3') with the kernel's errno.
 */
export function cloneParentExec(flags: bigint, setTid: number, prog: string, argv: readonly string[], beforeExec?: BeforeExec): number {
  if ((flags & (CLONE_VM | CLONE_FILES | CLONE_PARENT | CLONE_VFORK)) !== 0n) throw new RangeError('cloneParentExec: flags must hold only namespaces');
  cloneExec ??= nativeFunction3(CODE);
  const args = Buffer.alloc(CLONE_ARGS_SIZE + 8);
  args.writeBigUInt64LE(flags | CLONE_VM | CLONE_PARENT | CLONE_CLEAR_SIGHAND | (beforeExec ? 0n : CLONE_VFORK), 0);
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
  // Both pipes close on exec: the child's copies go when its program starts.
  const gate = beforeExec ? pipe2(O_CLOEXEC) : undefined;
  let done: [number, number] | undefined;
  try {
    done = beforeExec ? pipe2(O_CLOEXEC) : undefined;
  } catch (e) {
    if (gate) gate.forEach(closeQuiet);
    throw e;
  }
  const exec = new BigUint64Array([addr(strings[0] as Buffer), addr(argvArr), addr(envp), BigInt(gate?.[0] ?? -1), 0n, BigInt(gate?.[1] ?? -1)]);
  // Held from a module variable for the call: nothing the child reads may be collected under it.
  pinned = [strings, argvArr, envp, exec, args];
  const dumpable = beforeExec ? prctl(PR.GET_DUMPABLE) : 0;
  let r = 0n;
  try {
    r = cloneExec(addr(args), CLONE_ARGS_SIZE, addr(exec));
    if (gate && done) {
      close(done[1]);
      done[1] = -1;
      let failed: { e: unknown } | undefined;
      if (r > 0n) {
        try {
          const root = (beforeExec as BeforeExec)(Number(r));
          write(gate[1], Buffer.from([root ? 1 : 2]));
        } catch (e) {
          // The gate stays shut: the child reads end of file and exits 127, having run nothing.
          failed = { e };
        }
      }
      close(gate[1]);
      gate[1] = -1;
      // End of file once the child's copy of the write end went with its
      // exec or exit: until then it may still read `exec`, held in `pinned`.
      if (r > 0n) waitClosed(done[0]);
      // The child shared our mm until its exec: an id change there made our mm undumpable (commit_creds).
      if (dumpable === 1 && prctl(PR.GET_DUMPABLE) !== 1) prctl(PR.SET_DUMPABLE, 1);
      if (failed) throw failed.e;
    }
  } finally {
    for (const fd of [...(gate ?? []), ...(done ?? [])]) if (fd >= 0) closeQuiet(fd);
    pinned = undefined;
  }
  if (r < 0n) throw new SyscallError('clone3', Number(-r), undefined);
  return Number(r);
}

/** Read `fd` (a pipe nobody writes to) until end of file. */
function waitClosed(fd: number): void {
  const b = Buffer.alloc(1);
  for (;;) {
    try {
      if (read(fd, b) === 0) return;
    } catch (e) {
      if (!isSyscallError(e, EINTR)) throw e;
    }
  }
}
