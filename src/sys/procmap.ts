/**
 * PROCMAP_QUERY (Linux 6.11+): an ioctl on an open /proc/PID/maps that
 * answers for one address, where reading the file has the kernel format
 * every mapping and us parse it. Where the kernel lacks it (ENOTTY), or
 * cannot answer, callers read the maps as before.
 */
import { closeSync, openSync } from 'node:fs';
import { ioctlTry } from './process.js';
import { ENOENT } from './errno.js';

/** _IOWR('f', 17, struct procmap_query): 104 bytes, linux/fs.h */
export const PROCMAP_QUERY = 0xc0686611;
const QUERY_BYTES = 104;
/** query_flags: match only a mapping that is executable */
const PROCMAP_QUERY_VMA_EXECUTABLE = 0x04;

/** A task's maps file, open for PROCMAP_QUERY. */
export class ProcMapQuery {
  private readonly fd: number;
  private readonly arg = Buffer.alloc(QUERY_BYTES);

  /** Throws (ENOENT, ESRCH, EACCES as opening the file does) when the task's maps cannot be opened. */
  constructor(tid: number) {
    this.fd = openSync(`/proc/${tid}/maps`, 'r');
  }

  /**
   * Whether the `len` bytes at `addr` lie in one executable mapping: true
   * or false as the kernel says, undefined when it cannot be asked (no
   * PROCMAP_QUERY, or any other failure).
   */
  executableAt(addr: bigint, len: number): boolean | undefined {
    const a = this.arg;
    a.fill(0);
    a.writeBigUInt64LE(BigInt(QUERY_BYTES), 0);
    a.writeBigUInt64LE(BigInt(PROCMAP_QUERY_VMA_EXECUTABLE), 8);
    a.writeBigUInt64LE(addr, 16);
    const r = ioctlTry(this.fd, PROCMAP_QUERY, a);
    if (r === 0) return a.readBigUInt64LE(24) <= addr && addr + BigInt(len) <= a.readBigUInt64LE(32);
    // ENOENT: no mapping covers it, or the one that does is not executable.
    return r === -ENOENT ? false : undefined;
  }

  close(): void {
    closeSync(this.fd);
  }
}
