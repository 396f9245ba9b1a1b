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
import type { MapsEntry } from '../proc/maps.js';

const PAGE = 4096n;
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
