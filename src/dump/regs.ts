/**
 * Registers of a stopped thread as CRIU stores them: general purpose
 * registers (with the syscall-restart fix-up applied), and the x87/SSE/AVX
 * state read as one XSAVE area.
 */
import {
  GP_REG_NAMES, decodeGpRegs, ptraceGetRegset, NT_X86_XSTATE, XSAVE, NR,
  ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK, type GpRegs,
} from '../sys/index.js';
import type { UserX86RegsEntry, UserX86FpregsEntry } from '../images/messages.js';
import type { Tracee } from '../infect/tracee.js';
import { logger } from '../log.js';

const log = logger('regs');

/** Biggest XSAVE area we ask for; the kernel returns the real size. */
const XSAVE_MAX_BYTES = 16384;
const TIMER_ABSTIME = 1n;

/**
 * A thread stopped inside a syscall has rax = -ERESTART* and orig_rax = the
 * syscall. Rewrite the registers so the restored thread re-issues the call,
 * as the kernel would on a signal with SA_RESTART. Calls whose restart
 * state lives in the kernel's restart_block (nanosleep, poll, futex) are
 * re-issued with their original arguments; a relative nanosleep continues
 * with the remaining time the kernel wrote to its `rem` argument.
 */
export function fixupSyscallRestart(t: Tracee, regs: GpRegs): GpRegs {
  const orig = BigInt.asIntN(64, regs.orig_ax);
  const ax = -BigInt.asIntN(64, regs.ax);
  if (orig < 0n) return regs;
  const out = { ...regs };
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

function u32s(buf: Buffer, off: number, count: number): number[] {
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = buf.readUInt32LE(off + i * 4);
  return out;
}
function u64s(buf: Buffer, off: number, count: number): bigint[] {
  const out = new Array<bigint>(count);
  for (let i = 0; i < count; i++) out[i] = off + i * 8 + 8 <= buf.length ? buf.readBigUInt64LE(off + i * 8) : 0n;
  return out;
}

export function dumpFpRegs(tid: number): UserX86FpregsEntry {
  const x = ptraceGetRegset(tid, NT_X86_XSTATE, XSAVE_MAX_BYTES);
  const xstateBv = x.length >= 520 ? x.readBigUInt64LE(XSAVE.headerXstateBv) : 0n;
  const fp: UserX86FpregsEntry = {
    cwd: x.readUInt16LE(XSAVE.cwd),
    swd: x.readUInt16LE(XSAVE.swd),
    twd: x.readUInt16LE(XSAVE.twd),
    fop: x.readUInt16LE(XSAVE.fop),
    rip: x.readBigUInt64LE(XSAVE.rip),
    rdp: x.readBigUInt64LE(XSAVE.rdp),
    mxcsr: x.readUInt32LE(XSAVE.mxcsr),
    mxcsr_mask: x.readUInt32LE(XSAVE.mxcsrMask),
    st_space: u32s(x, XSAVE.stSpace, 32),
    xmm_space: u32s(x, XSAVE.xmmSpace, 64),
    padding: u32s(x, XSAVE.padding, 24),
  };
  if (x.length > 576) {
    fp.xsave = {
      xstate_bv: xstateBv,
      ymmh_space: u32s(x, XSAVE.ymmh, 64),
    };
    if (x.length >= XSAVE.bndcsr + 16) {
      fp.xsave.bndreg_state = u64s(x, XSAVE.bndregs, 8);
      fp.xsave.bndcsr_state = u64s(x, XSAVE.bndcsr, 2);
    }
    if (x.length >= XSAVE.pkru + 8) {
      fp.xsave.opmask_reg = u64s(x, XSAVE.opmask, 8);
      fp.xsave.zmm_upper = u64s(x, XSAVE.zmmHi256, 64);
      fp.xsave.hi16_zmm = u64s(x, XSAVE.hi16Zmm, 128);
      fp.xsave.pkru = u32s(x, XSAVE.pkru, 2);
    }
  }
  return fp;
}
