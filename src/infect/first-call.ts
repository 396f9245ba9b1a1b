/**
 * The first injected call of a dump target, the mmap of its scratch area,
 * covered like every other (docs/robustness.md, "The first call").
 *
 * A self-cure frame needs memory in the task, and before this call there is
 * none of ours. So the frame goes where the kernel itself would put a
 * signal frame for a handler without SA_ONSTACK: below the 128-byte red
 * zone of the thread's stack pointer. We take that only on the process's
 * main stack ([stack]), with the main thread's stack pointer in it: below
 * that pointer the stack is dead (the thread's frames all lie above it,
 * and nothing else lives in [stack]). A thread elsewhere (a Go goroutine's
 * stack, with another goroutine's just below, a coroutine stack) is not
 * given a frame there: that first call stays uncovered, as it was.
 *
 * The area itself goes at an address chosen here, in a hole of the task's
 * address space (MAP_FIXED_NOREPLACE), so that the guardian is told where
 * it will be before the call runs: killed at any moment of it, the thread
 * runs the mmap and its sigreturn by itself, and the guardian finds and
 * removes the area.
 */
import { parseMaps, parseStatus, type MapsEntry } from '../proc/index.js';
import {
  ptraceGetRegsetView, ptraceGetSigmask, processVmReadv, processVmWritev, regOffset, NT_X86_XSTATE, PAGE_SIZE, XSAVE_MAX_BYTES,
} from '../sys/index.js';
import { buildSelfCure, frameSlotBytes, type SelfCure } from './sigframe.js';
import type { Gadgets } from './gadgets.js';

const PAGE = BigInt(PAGE_SIZE);
/** The x86-64 ABI's red zone, below the stack pointer, which leaf functions use. */
const RED_ZONE = 128n;
/** Lowest address the kernel lets a task map by default (vm.mmap_min_addr), and the end of user space. */
const LOW = 0x10000n;
const HIGH = 0x7fff_ffff_f000n;

/**
 * An address for `size` bytes in a hole of `maps` (sorted), the highest
 * one, as the kernel's own top-down allocator would take, at its top: a
 * page clear of each neighbour, never just below a stack (it grows down).
 * Undefined if no hole fits.
 */
export function pickHole(maps: readonly MapsEntry[], size: number): bigint | undefined {
  const len = (BigInt(size) + PAGE - 1n) & ~(PAGE - 1n);
  const sorted = [...maps].filter((m) => m.start < HIGH).sort((a, b) => (a.start < b.start ? -1 : 1));
  for (let i = sorted.length - 1; i >= 1; i--) {
    const upper = sorted[i] as MapsEntry;
    const lower = sorted[i - 1] as MapsEntry;
    if (upper.path === '[stack]') continue;
    const at = upper.start - PAGE - len;
    if (at >= lower.end + PAGE && at >= LOW) return at;
  }
  return undefined;
}

/**
 * Where a frame of `bytes` goes below the red zone of stack pointer `sp`
 * (64-byte aligned), if `sp` is in the main stack and the frame fits in it.
 */
export function stackFrameSlot(maps: readonly MapsEntry[], sp: bigint, bytes: number): bigint | undefined {
  const stack = maps.find((m) => m.path === '[stack]' && sp > m.start && sp <= m.end);
  if (stack === undefined) return undefined;
  const slot = (sp - RED_ZONE - BigInt(bytes)) & ~63n;
  return slot >= stack.start ? slot : undefined;
}

/** What the first call runs with: the frame on the stack, the bytes it covers, the area's address and size. */
export interface FirstCall {
  slot: bigint;
  saved: Buffer;
  frame: { used: number; injectSp: bigint; idleRegs: Buffer };
  at: bigint;
  size: number;
}

/**
 * Write thread `tid`'s self-cure frame on its main stack for a first call
 * making `size` bytes of scratch area (`orig`: its registers at the stop,
 * `g`: its gadgets), or say why it cannot be covered so.
 */
export function planFirstCall(tid: number, orig: Buffer, g: Gadgets, size: number): FirstCall | string {
  const status = parseStatus(tid);
  if (status.tgid !== tid) return 'not the main thread';
  if (status.x86ThreadFeatures.includes('shstk')) return 'shadow stack';
  const xstate = ptraceGetRegsetView(tid, NT_X86_XSTATE, XSAVE_MAX_BYTES);
  const maps = parseMaps(tid);
  const slot = stackFrameSlot(maps, orig.readBigUInt64LE(regOffset('sp')), frameSlotBytes(xstate.length));
  if (slot === undefined) return 'its stack pointer is not in the main stack, or too low in it';
  const at = pickHole(maps, size);
  if (at === undefined) return 'no hole in its address space';
  const sc = buildSelfCure(slot, orig, ptraceGetSigmask(tid), xstate, g);
  if (!sc) return 'no syscall;ret or sigreturn gadget';
  const saved = Buffer.alloc(sc.used);
  let n = 0;
  try {
    n = processVmReadv(tid, saved, 0, [{ addr: slot, len: sc.used }]);
    // process_vm_writev only: never through a page the task could not write itself.
    if (n === sc.used) n = processVmWritev(tid, sc.image, 0, [{ addr: slot, len: sc.used }]);
  } catch {
    n = 0;
  }
  if (n !== sc.used) return `stack at 0x${slot.toString(16)} not writable`;
  const frame = { used: sc.used, injectSp: sc.injectSp, idleRegs: sc.idleRegs };
  return { slot, saved, frame, at, size: Math.ceil(size / PAGE_SIZE) * PAGE_SIZE };
}

/**
 * A frame's new place when the scratch area holding it is about to be
 * unmapped: where the kernel itself would write a signal frame, the top of
 * the thread's sigaltstack (`ss`: its stack_t as sigaltstack() gave it) if
 * one is set and the thread is not on it, else below the red zone of its
 * stack. Memory there is free for the kernel to write at any moment (a
 * signal), so it is for us. Returns the frame written there, or undefined
 * when that memory cannot be written (process_vm_writev only: never
 * through read-only pages) and the frame stays where it is.
 */
export function frameOffScratch(tid: number, orig: Buffer, used: number, src: { mask: bigint; xstate: Buffer }, g: Gadgets, ss: Buffer): SelfCure | undefined {
  const ssSp = ss.readBigUInt64LE(0);
  const ssDisabled = (ss.readInt32LE(8) & 2) !== 0; // SS_DISABLE
  const ssSize = ss.readBigUInt64LE(16);
  const sp = orig.readBigUInt64LE(regOffset('sp'));
  const onAltStack = sp > ssSp && sp - ssSp <= ssSize;
  const top = !ssDisabled && ssSize > 0n && !onAltStack ? ssSp + ssSize : sp - RED_ZONE;
  const slot = (top - BigInt(used)) & ~63n;
  const sc = buildSelfCure(slot, orig, src.mask, src.xstate, g);
  if (!sc) return undefined;
  let n = 0;
  try {
    n = processVmWritev(tid, sc.image, 0, [{ addr: slot, len: sc.used }]);
  } catch {
    n = 0;
  }
  return n === sc.used ? sc : undefined;
}
