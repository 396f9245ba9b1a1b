/**
 * A task that puts itself back: the self-cure frame.
 *
 * ptrace has no "undo on tracer exit". If criu-ts dies (SIGKILL, a crash)
 * while it holds a task, the kernel lets the task run on with whatever
 * registers and signal mask we left in it. So, before we change anything
 * in a thread, we write into our scratch area an rt_sigframe, the structure
 * the kernel itself writes on signal delivery, holding the thread's own
 * registers, signal mask and FPU/AVX state, and we keep the thread's
 * registers, at every ptrace stop, in a state where resuming it runs
 * `rt_sigreturn` on that frame:
 *
 * - between calls: ip = a `mov $15,%rax; syscall` already in the task
 *   (libc's signal restorer), sp just past the frame;
 * - during an injected call: ip = a `syscall; ret` already in the task, sp
 *   at the frame, whose first word (pretcode) is the restorer: after our
 *   syscall the `ret` lands in the restorer.
 *
 * Either way, if we vanish, the thread's next instructions are rt_sigreturn,
 * and it carries on exactly as it was (the scratch mapping stays; see
 * docs/robustness.md). Without a restorer, `pop %rax; ret` loads 15 from the
 * stack we prepared instead.
 *
 * Layout facts (arch/x86/include/uapi/asm/sigcontext.h, ucontext.h,
 * arch/x86/kernel/signal_64.c): the kernel reads the frame at sp - 8 on
 * rt_sigreturn; uc_flags UC_FP_XSTATE|UC_SIGCONTEXT_SS|UC_STRICT_RESTORE_SS;
 * the FPU area is a 64-byte-aligned XSAVE image whose sw_reserved bytes
 * carry FP_XSTATE_MAGIC1 and sizes, followed by FP_XSTATE_MAGIC2.
 * rt_sigreturn also sets the altstack from uc_stack: we give it an invalid
 * ss_flags, which the kernel refuses (EINVAL, squashed), so the task's
 * altstack is left alone.
 */
import { regOffset, NR, ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK } from '../sys/index.js';
import type { Gadgets } from './gadgets.js';

const FRAME_BYTES = 440; // pretcode 8 + ucontext 304 + siginfo 128
const UC = 8;
const UC_STACK_FLAGS = UC + 24;
const MCONTEXT = UC + 40;
const UC_SIGMASK = UC + 296;
const UC_FLAGS_ALL = 1n | 2n | 4n; // UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
/** ss_flags the kernel rejects: rt_sigreturn leaves the altstack as it is */
const SS_FLAGS_INVALID = 7;
/** where the XSAVE image starts inside a slot (64-byte aligned) */
const FPSTATE_OFFSET = 512;
const FP_XSTATE_MAGIC1 = 0x46505853;
const FP_XSTATE_MAGIC2 = 0x46505845;
/** end of the default (non-dynamic) XSAVE features when AMX tile data is in XCR0 */
const XTILEDATA_BIT = 1n << 18n;
const END_BEFORE_XTILEDATA = 2816;

/** sigcontext_64 order: r8..r15, di, si, bp, bx, dx, ax, cx, sp, ip, flags */
const SIGCONTEXT_REGS = ['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'di', 'si', 'bp', 'bx', 'dx', 'ax', 'cx', 'sp', 'ip', 'flags'] as const;

/** Bytes one thread's frame needs, given the size of its XSAVE area. */
export function frameSlotBytes(xstateBytes: number): number {
  return FPSTATE_OFFSET + Math.ceil((xstateBytes + 4) / 64) * 64;
}

function reg(b: Buffer, n: Parameters<typeof regOffset>[0]): bigint {
  return b.readBigUInt64LE(regOffset(n));
}

/**
 * The registers the task would resume with if we simply let it go now: a
 * syscall our stop interrupted is restarted, as the kernel does on resume
 * when no handler runs. rt_sigreturn itself never restarts (it sets
 * orig_ax = -1 and forgets the restart block), so the frame must carry the
 * restart explicitly: ip back on the `syscall`, rax = the call again.
 */
export function resumeRegs(orig: Buffer): Buffer {
  const r = Buffer.from(orig);
  const origAx = BigInt.asIntN(64, reg(orig, 'orig_ax'));
  const err = -BigInt.asIntN(64, reg(orig, 'ax'));
  if (origAx < 0n) return r;
  const restart = err === BigInt(ERESTARTSYS) || err === BigInt(ERESTARTNOINTR) || err === BigInt(ERESTARTNOHAND) || err === BigInt(ERESTART_RESTARTBLOCK);
  if (!restart) return r;
  // A restart_block call (nanosleep, poll, futex) cannot go through
  // restart_syscall after rt_sigreturn: re-issue it with its arguments.
  r.writeBigUInt64LE(BigInt.asUintN(64, origAx), regOffset('ax'));
  r.writeBigUInt64LE(reg(orig, 'ip') - 2n, regOffset('ip'));
  if (err === BigInt(ERESTART_RESTARTBLOCK) && origAx === BigInt(NR.nanosleep) && reg(orig, 'si') !== 0n) {
    r.writeBigUInt64LE(reg(orig, 'si'), regOffset('di')); // the kernel left the time still to sleep in *rem
  }
  return r;
}

export interface SelfCure {
  /**
   * the bytes to write at the slot address (frameSlotBytes long), in a
   * buffer the next buildSelfCure() reuses: write them at once (a fresh
   * 12 KiB image per thread was garbage V8 only counted, not collected)
   */
  image: Buffer;
  /** how many of them the frame really uses (the rest is XSAVE room for dynamic features) */
  used: number;
  /** sp for an injected call (ip = gadgets.syscallRet) */
  injectSp: bigint;
  /** registers to leave in the thread between calls */
  idleRegs: Buffer;
}

/**
 * Build a thread's self-cure frame for the slot at `slot` (64-byte
 * aligned, frameSlotBytes(xstate.length) long). `orig` are the registers at
 * the stop, `sigmask` its own mask, `xstate` its NT_X86_XSTATE area.
 */
export function buildSelfCure(slot: bigint, orig: Buffer, sigmask: bigint, xstate: Buffer, g: Gadgets): SelfCure | undefined {
  if (g.syscallRet === undefined || (g.sigreturn === undefined && g.popRaxRet === undefined)) return undefined;
  if (xstate.length < FPSTATE_OFFSET + 64) return undefined;
  const image = imageBuffer(frameSlotBytes(xstate.length));
  // With a restorer the frame starts at the slot; with `pop %rax; ret`,
  // two words before it hold that gadget's address and the number 15.
  const chain = g.sigreturn === undefined;
  const frameOff = chain ? 16 : 0;
  const frame = slot + BigInt(frameOff);
  if (chain) {
    image.writeBigUInt64LE(g.popRaxRet as bigint, 0);
    image.writeBigUInt64LE(15n, 8);
  }
  image.writeBigUInt64LE(chain ? g.syscall : (g.sigreturn as bigint), frameOff); // pretcode
  image.writeBigUInt64LE(UC_FLAGS_ALL, frameOff + UC);
  image.writeInt32LE(SS_FLAGS_INVALID, frameOff + UC_STACK_FLAGS);
  const regs = resumeRegs(orig);
  SIGCONTEXT_REGS.forEach((n, i) => image.writeBigUInt64LE(reg(regs, n), frameOff + MCONTEXT + i * 8));
  const seg = frameOff + MCONTEXT + 144;
  image.writeUInt16LE(Number(reg(regs, 'cs')), seg);
  image.writeUInt16LE(Number(reg(regs, 'gs')), seg + 2);
  image.writeUInt16LE(Number(reg(regs, 'fs')), seg + 4);
  image.writeUInt16LE(Number(reg(regs, 'ss')), seg + 6);
  image.writeBigUInt64LE(slot + BigInt(FPSTATE_OFFSET), frameOff + MCONTEXT + 184);
  image.writeBigUInt64LE(BigInt.asUintN(64, sigmask), frameOff + UC_SIGMASK);
  // FPU: the ptrace XSAVE image, with the signal-frame software bytes in
  // place of ptrace's (which hold only XCR0), patched in the image itself.
  const fp = image.subarray(FPSTATE_OFFSET);
  xstate.copy(fp);
  let xfeatures = xstate.readBigUInt64LE(464);
  let size = xstate.length;
  if ((xfeatures & XTILEDATA_BIT) !== 0n && size > END_BEFORE_XTILEDATA) {
    // AMX tile data is a dynamic feature a task's frame holds only with
    // permission; leave it out so the kernel accepts the frame.
    xfeatures &= ~XTILEDATA_BIT;
    size = END_BEFORE_XTILEDATA;
  }
  fp.fill(0, 464, 512);
  fp.writeUInt32LE(FP_XSTATE_MAGIC1, 464);
  fp.writeUInt32LE(size + 4, 468); // extended_size
  fp.writeBigUInt64LE(xfeatures, 472);
  fp.writeUInt32LE(size, 480); // xstate_size
  fp.fill(0, size, xstate.length); // tile data left out
  image.writeUInt32LE(FP_XSTATE_MAGIC2, FPSTATE_OFFSET + size);
  // Kept per thread: memory of its own, not a slice of a shared pool slab.
  const idle = Buffer.allocUnsafeSlow(orig.length);
  orig.copy(idle);
  idle.writeBigUInt64LE(chain ? (g.popRaxRet as bigint) : (g.sigreturn as bigint), regOffset('ip'));
  idle.writeBigUInt64LE(chain ? slot + 8n : frame + 8n, regOffset('sp'));
  idle.writeBigUInt64LE(15n, regOffset('ax'));
  idle.writeBigUInt64LE(BigInt.asUintN(64, -1n), regOffset('orig_ax'));
  if (FRAME_BYTES + frameOff > FPSTATE_OFFSET) throw new Error('self-cure frame layout');
  return { image, used: FPSTATE_OFFSET + size + 4, injectSp: chain ? slot : frame, idleRegs: idle };
}

let imageScratch = Buffer.alloc(0);

/** A zeroed image of `bytes`, in the buffer every frame is built in. */
function imageBuffer(bytes: number): Buffer {
  if (imageScratch.length < bytes) imageScratch = Buffer.alloc(bytes);
  const b = imageScratch.subarray(0, bytes);
  b.fill(0);
  return b;
}

/** Bytes to read at a slot to parse it back with parseSelfCure (the XSAVE area follows). */
export const SELF_CURE_HEADER_BYTES = FPSTATE_OFFSET + 512;

/**
 * Read back a frame written by buildSelfCure, from the bytes at its slot
 * (at least frameSlotBytes long): what rt_sigreturn would put back. Used
 * by the guardian for a thread that had not run its sigreturn yet (it was
 * stopped). `xstate` is the XSAVE image in ptrace's layout.
 */
export function parseSelfCure(image: Buffer): { regs: Partial<Record<Parameters<typeof regOffset>[0], bigint>>; sigmask: bigint; xstate: Buffer } | undefined {
  const flagsAt = (off: number): bigint => image.readBigUInt64LE(off + UC);
  const frameOff = flagsAt(0) === UC_FLAGS_ALL ? 0 : flagsAt(16) === UC_FLAGS_ALL ? 16 : -1;
  if (frameOff < 0) return undefined;
  const regs: Partial<Record<Parameters<typeof regOffset>[0], bigint>> = {};
  SIGCONTEXT_REGS.forEach((n, i) => (regs[n] = image.readBigUInt64LE(frameOff + MCONTEXT + i * 8)));
  const seg = frameOff + MCONTEXT + 144;
  regs.cs = BigInt(image.readUInt16LE(seg));
  regs.ss = BigInt(image.readUInt16LE(seg + 6));
  regs.orig_ax = BigInt.asUintN(64, -1n);
  const size = image.readUInt32LE(FPSTATE_OFFSET + 480);
  if (image.readUInt32LE(FPSTATE_OFFSET + 464) !== FP_XSTATE_MAGIC1 || FPSTATE_OFFSET + size > image.length) return undefined;
  const xstate = Buffer.from(image.subarray(FPSTATE_OFFSET, FPSTATE_OFFSET + size));
  xstate.fill(0, 464, 512);
  xstate.writeBigUInt64LE(image.readBigUInt64LE(FPSTATE_OFFSET + 472), 464); // XCR0, as ptrace has it
  return { regs, sigmask: image.readBigUInt64LE(frameOff + UC_SIGMASK), xstate };
}
