/**
 * Registers of a stopped thread as CRIU stores them: general purpose
 * registers (with the syscall-restart fix-up applied), and the XSAVE area
 * (x87, SSE, AVX, AVX-512, PKRU; see infect/xsave.ts).
 */
import {
  GP_REG_NAMES, decodeGpRegs, NR, ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK, EINTR, type GpRegs,
  XSAVE_MAX_BYTES,
} from '../sys/index.js';
import type { UserX86RegsEntry, UserX86FpregsEntry } from '../images/messages.js';
import type { Tracee } from '../infect/tracee.js';
import { readXstateView } from '../infect/ptrace-state.js';
import { xsaveToFpregs } from '../infect/xsave.js';
import { xstateLayoutOfOwnTask } from '../infect/cpuid.js';
import { logger } from '../log.js';

const log = logger('regs');

/** Biggest XSAVE area we ask for; the kernel returns the real size (11008 bytes with AMX). */
const TIMER_ABSTIME = 1n;

/**
 * A thread stopped inside a syscall has rax = -ERESTART* and orig_rax = the
 * syscall. Rewrite the registers so the restored thread re-issues the call,
 * as the kernel would on a signal with SA_RESTART. Calls whose restart
 * state lives in the kernel's restart_block (nanosleep, poll, futex) are
 * re-issued with their original arguments; a relative nanosleep continues
 * with the remaining time the kernel wrote to its `rem` argument. A thread
 * caught in restart_syscall itself (a call of those stopped once before,
 * e.g. by a pre-dump, and restarted by the kernel) has no arguments left
 * but in its restart_block, which no image holds: it gets EINTR, as CRIU
 * gives every such call (re-issued, restart_syscall would run whatever
 * restart_block the restored thread inherited: the stub's nanosleep's).
 */
export function fixupSyscallRestart(t: Tracee, regs: GpRegs): GpRegs {
  const orig = BigInt.asIntN(64, regs.orig_ax);
  const ax = -BigInt.asIntN(64, regs.ax);
  if (orig < 0n) return regs;
  const out = { ...regs };
  if (ax === BigInt(ERESTART_RESTARTBLOCK) && orig === BigInt(NR.restart_syscall)) {
    out.ax = BigInt.asUintN(64, BigInt(-EINTR));
    log.debug(`thread ${t.tid}: stopped in restart_syscall: its call returns EINTR after restore`);
    return out;
  }
  const restartable = ax === BigInt(ERESTARTSYS) || ax === BigInt(ERESTARTNOINTR) || ax === BigInt(ERESTARTNOHAND);
  if (restartable || ax === BigInt(ERESTART_RESTARTBLOCK)) {
    out.ax = regs.orig_ax;
    out.ip = regs.ip - 2n;
  }
  if (ax === BigInt(ERESTART_RESTARTBLOCK)) {
    if (orig === BigInt(NR.nanosleep) && regs.si !== 0n) {
      out.di = regs.si; // nanosleep(rem, rem): the kernel stored the time left in *rem
    } else if (orig === BigInt(NR.clock_nanosleep) && (regs.si & TIMER_ABSTIME) === 0n && regs.r10 !== 0n) {
      out.dx = regs.r10;
    }
    log.debug(`thread ${t.tid}: syscall ${orig} will be re-issued after restore`);
  }
  return out;
}

export function dumpGpRegs(t: Tracee): UserX86RegsEntry {
  // The registers at the stop, not the current ones (injected calls moved them).
  const regs = fixupSyscallRestart(t, decodeGpRegs(t.origRegs));
  const e = { mode: 'NATIVE' } as unknown as UserX86RegsEntry;
  for (const n of GP_REG_NAMES) (e as unknown as Record<string, bigint>)[n] = regs[n];
  return e;
}

export function dumpFpRegs(t: Tracee): UserX86FpregsEntry {
  // Without the cpuid driver, the layout comes from a cpuid run in a process of ours (once, then cached);
  // asked first, as it may read registers itself.
  const layout = xstateLayoutOfOwnTask();
  // Converted at once: no copy of the area (one per thread).
  return xsaveToFpregs(readXstateView(t.tid, XSAVE_MAX_BYTES), layout, `thread ${t.tid}`);
}
