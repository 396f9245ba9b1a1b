/**
 * Guard regions (madvise MADV_GUARD_INSTALL, Linux 6.13+). Kernel object:
 * page-table markers inside a VMA that fault on any access; they are no
 * VMA of their own and show in no /proc file but PAGEMAP_SCAN's
 * PAGE_IS_GUARD category (6.14+). CRIU's image: one vma_entry per guard
 * range with status VMA_AREA_GUARD only, after the task's real VMAs.
 * Restore installs them again once the memory is in place.
 *
 * Where smaps shows VM_MAYBE_GUARD (`gu` in VmFlags: a VMA that ever held
 * a guard region), only those VMAs are scanned: a 1 GiB task's whole
 * address space walked for nothing took 1.4 ms of a 30-40 ms final
 * incremental dump. Elsewhere the whole address space is scanned.
 *
 * Limits: on a kernel whose PAGEMAP_SCAN lacks PAGE_IS_GUARD (6.13),
 * guard regions cannot be seen and are not saved, as with CRIU.
 */
import { closeSync, openSync } from 'node:fs';
import { NR, pagemapScan, PAGE_IS_GUARD, isSyscallError, MADV_GUARD_INSTALL, guardFlagShown } from '../../sys/index.js';
import type { VmaEntry } from '../../images/messages.js';
import type { RestoreTaskHandle } from '../types.js';
import { VMA } from './vma.js';
import { EINVAL } from '../../sys/errno.js';

const TASK_SIZE = 0x7ffffffff000n;

/**
 * The task's guard regions as CRIU's VMA_AREA_GUARD entries (none where the
 * kernel cannot report them). `marked`: the VMAs whose smaps showed `gu`
 * (guardFlagShown says whether that flag can be trusted).
 */
export function dumpGuardRegions(pid: number, marked: readonly { start: bigint; end: bigint }[]): VmaEntry[] {
  const spans = guardFlagShown() ? marked : [{ start: 0n, end: TASK_SIZE }];
  if (spans.length === 0) return [];
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const regions = spans.flatMap((s) => pagemapScan(fd, s.start, s.end, { flags: 0, mask: PAGE_IS_GUARD, anyOf: 0, report: PAGE_IS_GUARD }, pid));
    return regions.map((r) => ({ start: r.start, end: r.end, pgoff: 0n, shmid: 0n, prot: 0, flags: 0, status: VMA.AREA_GUARD, fd: -1n }));
  } catch (e) {
    if (isSyscallError(e, EINVAL)) return []; // no PAGE_IS_GUARD (or no PAGEMAP_SCAN): nothing can be seen
    throw e;
  } finally {
    closeSync(fd);
  }
}

export function isGuard(v: VmaEntry): boolean {
  return (v.status & VMA.AREA_GUARD) !== 0;
}

/** Install the dumped guard regions (idempotent: inherited ones are installed already). */
export function restoreGuardRegions(t: RestoreTaskHandle, vmas: readonly VmaEntry[]): void {
  for (const v of vmas) {
    if (isGuard(v)) t.syscall('madvise(GUARD_INSTALL)', NR.madvise, v.start, v.end - v.start, MADV_GUARD_INSTALL);
  }
}
