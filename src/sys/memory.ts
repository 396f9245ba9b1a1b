/**
 * Another task's memory: process_vm_readv/writev in large iovec batches (one
 * syscall moves up to IOV_MAX remote ranges), with /proc/PID/mem as the path
 * for ranges those calls refuse (e.g. PROT_NONE or not-readable mappings,
 * where the kernel's FOLL_FORCE access still works for a tracer).
 */
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import { sysTry, addr } from './libc.js';
import { EFAULT } from './errno.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';

export const IOV_MAX = 1024;

export interface RemoteRange {
  addr: bigint;
  len: number;
}

/**
 * Read remote ranges back to back into `local` (starting at localOffset).
 * Returns bytes read; a short read means a range was unreadable from that point.
 */
export function processVmReadv(pid: number, local: Buffer, localOffset: number, ranges: readonly RemoteRange[]): number {
  return vmIo('process_vm_readv', NR.process_vm_readv, pid, local, localOffset, ranges);
}

export function processVmWritev(pid: number, local: Buffer, localOffset: number, ranges: readonly RemoteRange[]): number {
  return vmIo('process_vm_writev', NR.process_vm_writev, pid, local, localOffset, ranges);
}

const riovCache = { buf: Buffer.alloc(16 * IOV_MAX) };

function vmIo(name: string, nr: number, pid: number, local: Buffer, localOffset: number, ranges: readonly RemoteRange[]): number {
  let total = 0;
  let lofs = localOffset;
  const base = addr(local);
  const liov = Buffer.alloc(16);
  const riov = riovCache.buf;
  for (let i = 0; i < ranges.length; i += IOV_MAX) {
    const chunk = ranges.slice(i, i + IOV_MAX);
    let want = 0;
    chunk.forEach((r, j) => {
      riov.writeBigUInt64LE(r.addr, j * 16);
      riov.writeBigUInt64LE(BigInt(r.len), j * 16 + 8);
      want += r.len;
    });
    if (lofs + want > local.length) throw new SyscallError(name, 14, pid, 'local buffer too small');
    liov.writeBigUInt64LE(base + BigInt(lofs), 0);
    liov.writeBigUInt64LE(BigInt(want), 8);
    const r = sysTry(nr, pid, addr(liov), 1, addr(riov), chunk.length, 0);
    // EFAULT: the batch's first remote range cannot be read (or written) at
    // all. The kernel reports a fault past the first byte as a short count;
    // this is the same short count, at 0 (a mapping a running task removed,
    // a page it cannot read), for the caller's fallback to take up.
    if (r === -EFAULT) return total;
    if (r < 0) throw new SyscallError(name, -r, pid);
    const n = r;
    total += n;
    lofs += n;
    if (n < want) return total;
  }
  return total;
}

/** Like processVmReadv but returns -errno instead of throwing (for probing). */
export function processVmReadTry(pid: number, local: Buffer, remote: bigint): number {
  const liov = Buffer.alloc(16);
  const riov = Buffer.alloc(16);
  liov.writeBigUInt64LE(addr(local), 0);
  liov.writeBigUInt64LE(BigInt(local.length), 8);
  riov.writeBigUInt64LE(remote, 0);
  riov.writeBigUInt64LE(BigInt(local.length), 8);
  return sysTry(NR.process_vm_readv, pid, addr(liov), 1, addr(riov), 1, 0);
}

/** /proc/PID/mem handle for ranges that process_vm_* cannot reach. */
export class ProcMem {
  private fd: number;
  constructor(readonly pid: number, write = false) {
    try {
      this.fd = openSync(`/proc/${pid}/mem`, write ? 'r+' : 'r');
    } catch (e) {
      throw new SyscallError('open', 2, pid, `/proc/${pid}/mem: ${(e as Error).message}`);
    }
  }
  read(remote: bigint, into: Buffer, offset = 0, len = into.length - offset): number {
    return readSync(this.fd, into, offset, len, Number(remote));
  }
  write(remote: bigint, from: Buffer, offset = 0, len = from.length - offset): number {
    return writeSync(this.fd, from, offset, len, Number(remote));
  }
  close(): void {
    closeSync(this.fd);
  }
}

let guardFlag: boolean | undefined;
/** Where guardFlagShown's probe maps its two pages: below any mapping of Node's, so that their smaps record comes first. */
const GUARD_PROBE_ADDR = 0x100000;
/**
 * Whether smaps shows `gu` in the VmFlags of a VMA that holds (or held)
 * guard regions (VM_MAYBE_GUARD: a VMA without it holds none, so a dump
 * need not walk its page tables for them). Tried once: two pages of ours
 * mapped low (MAP_FIXED_NOREPLACE), one made a guard region, and the first
 * record of /proc/self/smaps read (ours: walking only our two pages). Any
 * doubt (the address taken, no guard regions, the record not ours) says
 * no, and the dump scans the whole address space as before.
 */
export function guardFlagShown(): boolean {
  if (guardFlag !== undefined) return guardFlag;
  const page = 4096;
  const m = sysTry(NR.mmap, GUARD_PROBE_ADDR, 2 * page, 3 /* PROT_READ|PROT_WRITE */, 0x100022 /* MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE */, -1, 0);
  if (m !== GUARD_PROBE_ADDR) {
    if (m > 0) sysTry(NR.munmap, m, 2 * page);
    return (guardFlag = false);
  }
  try {
    if (sysTry(NR.madvise, m, page, 102 /* MADV_GUARD_INSTALL */) !== 0) return (guardFlag = false);
    const fd = openSync('/proc/self/smaps', 'r');
    try {
      const buf = Buffer.alloc(2048);
      const text = buf.toString('latin1', 0, readSync(fd, buf, 0, buf.length, null));
      const flags = /^VmFlags:(.*)$/m.exec(text)?.[1] ?? '';
      guardFlag = text.startsWith(`${m.toString(16).padStart(8, '0')}-`) && flags.split(' ').includes('gu');
    } finally {
      closeSync(fd);
    }
  } finally {
    sysTry(NR.munmap, m, 2 * page);
  }
  return guardFlag;
}

let movesMany: boolean | undefined;
/**
 * Whether one mremap moves several adjacent VMAs at once (Linux 6.17+;
 * before, EFAULT): tried once, on two pages of our own with different
 * protections, moved onto the two after them.
 */
export function mremapMovesMany(): boolean {
  if (movesMany !== undefined) return movesMany;
  const page = 4096;
  const m = sysTry(NR.mmap, 0, 4 * page, 1 /* PROT_READ */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
  if (m < 0 && m > -4096) return (movesMany = false);
  try {
    const split = sysTry(NR.mprotect, m + page, page, 0 /* PROT_NONE */) === 0;
    movesMany = split && sysTry(NR.mremap, m, 2 * page, 2 * page, 3 /* MREMAP_MAYMOVE|MREMAP_FIXED */, m + 2 * page) === m + 2 * page;
  } finally {
    sysTry(NR.munmap, m, 4 * page);
  }
  return movesMany;
}
