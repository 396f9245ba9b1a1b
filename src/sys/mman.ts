/** Memory-mapping flags (x86_64, asm-generic/mman-common.h, linux/mman.h): mmap, mprotect, mremap. */

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_HUGETLB = 0x40000;
export const MAP_DROPPABLE = 0x08;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
export const MAP_FIXED_NOREPLACE = 0x100000;

/** mmap: log2 of a huge page size, shifted here (MAP_HUGE_2MB is 21 << MAP_HUGE_SHIFT) */
export const MAP_HUGE_SHIFT = 26;

/** madvise advice */
export const MADV_DONTNEED = 4;
/** fault a range in for writing, all of it, now (Linux 5.14+) */
export const MADV_POPULATE_WRITE = 23;
export const MADV_GUARD_INSTALL = 102;

export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
