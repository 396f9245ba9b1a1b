/**
 * A thread dumped inside a blocking syscall is stored as CRIU stores it:
 * rip rewound onto the `syscall` instruction and rax = orig_rax = the call,
 * so it issues the call again when it runs. Left at that, a signal handled
 * before the restored thread gets to run would be taken first and the call
 * issued afterwards, blocking on: a restored `while (!flag) sigsuspend()`
 * would miss the signal that sets its flag. So at restore such a thread is
 * handed back the kernel's own form instead: rip after the instruction,
 * rax = -ERESTART*, orig_rax = the call, set while the thread stands inside
 * signal delivery. The kernel then restarts the call when no handler runs,
 * or fails it with EINTR (per SA_RESTART) when one does, as it would have
 * had the task never been stopped.
 *
 * Which -ERESTART* code a call used is not in CRIU's images; it is fixed per
 * syscall in the kernel, so it is taken from this table (ERESTARTSYS, the
 * common case, otherwise).
 */
import { NR, ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, type GpRegs } from '../sys/index.js';

/** Calls that fail with EINTR whenever a handler runs (or whose restart state the kernel keeps in restart_block). */
const NOHAND: ReadonlySet<number> = new Set([
  NR.pause, NR.rt_sigsuspend, NR.select, NR.pselect6, NR.poll, NR.ppoll, NR.msgsnd, NR.msgrcv,
  NR.nanosleep, NR.clock_nanosleep,
]);
/** Calls that are always restarted, handler or not. */
const NOINTR: ReadonlySet<number> = new Set([NR.fork, NR.vfork, NR.clone, NR.clone3]);

const SYSCALL_INSN = Buffer.from([0x0f, 0x05]);

/**
 * The kernel's form of a thread's registers when they show a call to be
 * re-issued (rax = orig_rax >= 0 with rip on a `syscall` instruction);
 * undefined for every other thread. `codeAt` reads two bytes of the task.
 */
export function asInterruptedSyscall(regs: GpRegs, codeAt: (ip: bigint) => Buffer): GpRegs | undefined {
  const nr = BigInt.asIntN(64, regs.orig_ax);
  if (nr < 0n || regs.ax !== regs.orig_ax || nr === BigInt(NR.restart_syscall)) return undefined;
  let code: Buffer;
  try {
    code = codeAt(regs.ip);
  } catch {
    return undefined;
  }
  if (!code.equals(SYSCALL_INSN)) return undefined;
  const n = Number(nr);
  const err = NOHAND.has(n) ? ERESTARTNOHAND : NOINTR.has(n) ? ERESTARTNOINTR : ERESTARTSYS;
  return { ...regs, ip: regs.ip + 2n, ax: BigInt.asUintN(64, BigInt(-err)) };
}
