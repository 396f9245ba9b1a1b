/**
 * Facts shared by memory dump and restore: CRIU's VMA status bits
 * (criu/include/image.h), the MAP_* / PROT_* / MADV_* numbers, and how a
 * /proc/PID/smaps entry becomes a vma_entry.
 */
import type { SmapsEntry } from '../../proc/index.js';
import { PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_GROWSDOWN } from '../../sys/mman.js';

export const VMA = {
  AREA_REGULAR: 1 << 0,
  AREA_STACK: 1 << 1,
  AREA_VSYSCALL: 1 << 2,
  AREA_VDSO: 1 << 3,
  AREA_HEAP: 1 << 5,
  FILE_PRIVATE: 1 << 6,
  FILE_SHARED: 1 << 7,
  ANON_SHARED: 1 << 8,
  ANON_PRIVATE: 1 << 9,
  AREA_SYSVIPC: 1 << 10,
  AREA_SOCKET: 1 << 11,
  AREA_VVAR: 1 << 12,
  AREA_AIORING: 1 << 13,
  AREA_MEMFD: 1 << 14,
  AREA_SHSTK: 1 << 15,
  AREA_GUARD: 1 << 16,
  AREA_UPROBES: 1 << 17,
} as const;


/** smaps VmFlags → the madvise() advice that produced them (bit n of vma_entry.madv = advice n). */
export const MADV_BY_VMFLAG: Readonly<Record<string, number>> = {
  sr: 2, // MADV_SEQUENTIAL
  rr: 1, // MADV_RANDOM
  dc: 10, // MADV_DONTFORK
  dd: 16, // MADV_DONTDUMP
  mg: 12, // MADV_MERGEABLE
  hg: 14, // MADV_HUGEPAGE
  nh: 15, // MADV_NOHUGEPAGE
  wf: 18, // MADV_WIPEONFORK
};

export type VmaKind = 'skip' | 'vdso' | 'vvar' | 'vsyscall' | 'anon-private' | 'anon-shared' | 'file-private' | 'file-shared';

/** How a mapping is treated, from its smaps entry. */
export function classifyVma(v: SmapsEntry): VmaKind {
  if (v.path === '[vsyscall]') return 'vsyscall';
  if (v.path === '[vdso]') return 'vdso';
  if (v.path === '[vvar]' || v.path === '[vvar_vclock]') return 'vvar';
  if (v.path === '[uprobes]') return 'skip';
  // A private mapping of /dev/zero itself is plain anonymous memory (the
  // kernel makes it so at mmap). "/dev/zero (deleted)" is a shared
  // anonymous object instead, mapped privately through map_files: it stays
  // a file mapping (refused at dump for now).
  if (v.path === '/dev/zero' && !v.deleted && !v.shared) return 'anon-private';
  const anonShared = v.shared && (v.path === '/dev/zero' || v.path.startsWith('/SYSV') || v.path.startsWith('[anon_shmem:'));
  if (anonShared) return 'anon-shared';
  if (v.path === '' || v.path === '[heap]' || v.path === '[stack]' || v.path.startsWith('[anon:')) {
    return v.shared ? 'anon-shared' : 'anon-private';
  }
  return v.shared ? 'file-shared' : 'file-private';
}

export function madvOf(v: SmapsEntry): bigint {
  let m = 0n;
  for (const f of v.vmFlags) {
    const a = MADV_BY_VMFLAG[f];
    if (a !== undefined) m |= 1n << BigInt(a);
  }
  return m;
}
