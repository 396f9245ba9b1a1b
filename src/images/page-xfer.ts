/**
 * CRIU's page-server wire format (facts from CRIU 4.2's criu/page-xfer.c):
 * every command is a 32-byte `page_server_iov` {u32 cmd; (pad); u64
 * nr_pages; u64 vaddr; u64 dst_id}, little-endian, over one TCP
 * connection. ADD_F carries the pagemap entry's flags in the cmd's upper
 * 16 bits and is followed by nr_pages * 4096 bytes when PE_PRESENT is set.
 * dst_id names the pagemap image: (id << 8) | type, type 1 for a task's
 * pagemap-<pid>.img, 2 for pagemap-shmem-<shmid>.img. OPEN2 is answered
 * with one byte (the receiver holds a parent image of it), PARENT with an
 * int32, CLOSE/FORCE_CLOSE with an int32 status once every byte is stored.
 */

export const PS_IOV_ADD = 1;
export const PS_IOV_HOLE = 2;
export const PS_IOV_OPEN = 3;
export const PS_IOV_OPEN2 = 4;
export const PS_IOV_PARENT = 5;
export const PS_IOV_ADD_F = 6;
export const PS_IOV_GET = 7;
export const PS_IOV_CLOSE = 0x1023;
export const PS_IOV_FORCE_CLOSE = 0x1024;

export const PS_IOV_BYTES = 32;
const PS_CMD_BITS = 16;
const PS_TYPE_BITS = 8n;

export type PagemapTarget = { type: 'pid' | 'shmem'; id: number };

export interface PageServerIov {
  /** the command (low 16 bits) */
  cmd: number;
  /** pagemap entry flags (ADD_F) */
  flags: number;
  nrPages: bigint;
  vaddr: bigint;
  dstId: bigint;
}

export function encodeDstId(t: PagemapTarget): bigint {
  return (BigInt(t.id) << PS_TYPE_BITS) | (t.type === 'pid' ? 1n : 2n);
}

/** The pagemap image a dst_id names, or undefined for a type CRIU does not know. */
export function decodeDstId(dst: bigint): PagemapTarget | undefined {
  const type = Number(dst & 0xffn);
  const id = Number(dst >> PS_TYPE_BITS);
  if (type === 1) return { type: 'pid', id };
  if (type === 2) return { type: 'shmem', id };
  return undefined;
}

export function encodeIov(cmd: number, flags: number, nrPages: bigint, vaddr: bigint, dstId: bigint): Buffer {
  const b = Buffer.alloc(PS_IOV_BYTES);
  b.writeUInt32LE(((flags << PS_CMD_BITS) | cmd) >>> 0, 0);
  b.writeBigUInt64LE(nrPages, 8);
  b.writeBigUInt64LE(vaddr, 16);
  b.writeBigUInt64LE(dstId, 24);
  return b;
}

export function decodeIov(b: Buffer): PageServerIov {
  const raw = b.readUInt32LE(0);
  return {
    cmd: raw & ((1 << PS_CMD_BITS) - 1),
    flags: raw >>> PS_CMD_BITS,
    nrPages: b.readBigUInt64LE(8),
    vaddr: b.readBigUInt64LE(16),
    dstId: b.readBigUInt64LE(24),
  };
}

/** CRIU's page server numbers its pages files from here, clear of the dumper's own ids in a shared directory. */
export const PAGE_SERVER_PAGES_ID_BASE = 0x10001;
