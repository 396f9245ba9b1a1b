/**
 * A file mapped read-only into criu-ts's own address space (MAP_SHARED, so
 * its pages are the page cache's, nothing is copied): the lazy-pages
 * daemon hashes pages images and hands them to UFFDIO_COPY from there
 * instead of reading each run into a buffer first.
 */
import { mmapView, sys } from './libc.js';
import { NR } from './nr.js';
import { PROT_READ, MAP_SHARED } from './mman.js';

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
