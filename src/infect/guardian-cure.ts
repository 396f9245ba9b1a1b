/**
 * The guardian's part for dump targets (guardian.ts): each process still
 * holding our scratch area is seized again; a thread that has not run its
 * sigreturn yet (it was stopped, or not scheduled; or still at its first
 * call, first-call.ts) is put back from its frame by ptrace; the area is
 * unmapped; a signal our seize took goes back to its queue.
 */
import { listThreads, parseMaps } from '../proc/index.js';
import {
  NR, ptraceGetRegset, ptraceSetRegset, ptraceSetSigmask, NT_X86_XSTATE, regOffset, XSAVE_MAX_BYTES, PROT_READ, PROT_WRITE,
} from '../sys/index.js';
import { Tracee } from './tracee.js';
import { parseSelfCure, SELF_CURE_HEADER_BYTES } from './sigframe.js';
import { same } from './guardian-trackers.js';

/** Our scratch mapping is still there at addr, untouched by the program since. */
function scratchMapped(pid: number, addr: bigint, size: number): boolean {
  const end = (addr + BigInt(size) + 4095n) & ~4095n; // mmap rounds up to pages
  try {
    return parseMaps(pid).some((m) => m.start === addr && m.end === end && m.shared && m.prot.value === (PROT_READ | PROT_WRITE));
  } catch {
    return false; // the task is gone
  }
}

/**
 * A thread whose stack pointer is still in the scratch area had not run its
 * sigreturn when criu-ts died (it was stopped, or not scheduled yet): do
 * what rt_sigreturn would do, from its frame.
 */
function finishSelfCure(t: Tracee, slot: bigint): void {
  // The header first: a frame on the main stack (infect/first-call.ts) may lie close to its top.
  const head = t.readMem(slot, SELF_CURE_HEADER_BYTES);
  const xsize = head.readUInt32LE(SELF_CURE_HEADER_BYTES - 512 + 480);
  const f = parseSelfCure(xsize > 0 && xsize <= XSAVE_MAX_BYTES ? t.readMem(slot, SELF_CURE_HEADER_BYTES - 512 + xsize + 4) : head);
  if (!f) throw new Error(`thread ${t.tid}: no self-cure frame at 0x${slot.toString(16)}`);
  const regs = Buffer.from(t.origRegs);
  for (const [n, v] of Object.entries(f.regs)) regs.writeBigUInt64LE(BigInt.asUintN(64, v), regOffset(n as Parameters<typeof regOffset>[0]));
  t.setRegs(regs);
  ptraceSetSigmask(t.tid, f.sigmask);
  const x = Buffer.from(ptraceGetRegset(t.tid, NT_X86_XSTATE, XSAVE_MAX_BYTES));
  f.xstate.copy(x, 0, 0, Math.min(f.xstate.length, x.length));
  ptraceSetRegset(t.tid, NT_X86_XSTATE, x);
}

export function cureProcess(pid: number, s: { start: string; addr: bigint; size: number }, frames: Map<number, bigint>): boolean {
  if (!same(pid, s.start)) return false;
  // Not there: criu-ts died before the first call ran (it was told the
  // address beforehand, first-call.ts), or after it was unmapped. A thread
  // that has not run since (stopped) may still be at that call.
  const mapped = scratchMapped(pid, s.addr, s.size);
  const end = s.addr + BigInt(s.size);
  let putBack = false;
  for (const tid of listThreads(pid)) {
    const slot = frames.get(tid);
    if (!mapped && slot === undefined) continue;
    let t: Tracee;
    try {
      t = Tracee.seize(tid, { selfCure: true });
    } catch {
      continue; // gone meanwhile
    }
    try {
      // Its stack pointer still in our area, or on its frame (the first call's, on its own stack): no sigreturn yet.
      const sp = t.origRegs.readBigUInt64LE(regOffset('sp'));
      const atFrame = slot !== undefined && ((mapped && sp >= s.addr && sp < end) || (sp >= slot && sp < slot + 64n));
      if (atFrame) {
        finishSelfCure(t, slot);
        putBack = true;
      }
    } finally {
      t.detachQuiet();
    }
    // A signal our seize took (it arrived right then) goes back to its queue, by the thread itself.
    if (t.stashedSignals.length > 0) requeue(tid, t.stashedSignals);
  }
  if (!mapped) return putBack;
  const main = listThreads(pid)[0];
  if (main === undefined) return false;
  const t = Tracee.seize(main);
  try {
    t.syscall('munmap', NR.munmap, s.addr, s.size);
    t.cure();
  } finally {
    t.detachQuiet();
  }
  return true;
}

/** Put signals a seize of ours took back in the thread's queue (rt_tgsigqueueinfo from the thread keeps their siginfo). */
function requeue(tid: number, signals: readonly Buffer[]): void {
  let t: Tracee;
  try {
    t = Tracee.seize(tid);
  } catch {
    return; // gone
  }
  try {
    t.stashedSignals.unshift(...signals);
    t.cure();
  } finally {
    t.detachQuiet();
  }
}
