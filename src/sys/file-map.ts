/**
 * A file mapped read-only into criu-ts's own address space (MAP_SHARED, so
 * its pages are the page cache's, nothing is copied): the lazy-pages
 * daemon hashes pages images and hands them to UFFDIO_COPY from there
 * instead of reading each run into a buffer first.
 */
import { mmapView, sys, sysTry } from './libc.js';
import { NR } from './nr.js';
import { PROT_READ, MAP_SHARED, MADV_DONTNEED } from './mman.js';

export interface FileMap {
  /** where the file's byte 0 is in our memory */
  addr: bigint;
  /** the mapping's bytes (valid until unmapFile) */
  bytes: Buffer;
  size: number;
}

/** Map the first `size` bytes (> 0) of `fd`; throws SyscallError('mmap'). */
export function mapFileReadOnly(fd: number, size: number): FileMap {
  const { addr, bytes } = mmapView(fd, size, PROT_READ, MAP_SHARED);
  return { addr, bytes, size };
}

/** Unmap it: `bytes` must not be touched afterwards. */
export function unmapFile(m: FileMap): void {
  sys('munmap', NR.munmap, undefined, m.addr, m.size);
}

/**
 * Take the pages of [addr, addr+len) of our own address space out of our
 * page tables (MADV_DONTNEED), for a range that maps a file privately and
 * holds none of its own copies (nothing written): the next touch maps the
 * file's page again from the page cache, so nothing changes but the
 * resident set. On a range with copies it would throw those away: the
 * caller checks. False when the kernel refused.
 */
export function dropFilePages(addr: bigint, len: number): boolean {
  return sysTry(NR.madvise, addr, len, MADV_DONTNEED) === 0;
}
