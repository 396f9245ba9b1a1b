/**
 * A socket's classic BPF filter (SO_ATTACH_FILTER), CRIU's sk_opts_entry
 * so_filter: one fixed64 per instruction, code << 48 | jt << 40 | jf << 32 | k,
 * so the image reads the same on any byte order. Read at dump with
 * SO_GET_FILTER, which hands back the program as it was attached; attached
 * again inside the task at restore.
 *
 * Limits: an eBPF program (SO_ATTACH_BPF, or a classic one the kernel no
 * longer keeps the original of) cannot be read back and is refused, as is a
 * locked filter (SO_LOCK_FILTER: the image has no field for the lock, and a
 * filter the task could detach again is not the one it had).
 */
import { CriuTsError } from '../../../errors.js';
import { getsockoptInt, getsockoptLen, NR, SOL_SOCKET, SyscallError, EACCES, SO_ATTACH_FILTER, SO_LOCK_FILTER } from '../../../sys/index.js';
import type { RestoreTaskHandle } from '../../types.js';

const SO_GET_FILTER = SO_ATTACH_FILTER;
const INSN_BYTES = 8;

/** The socket's filter as CRIU writes it, or undefined when it has none. `what` names the socket in a refusal. */
export function dumpFilter(fd: number, what: string): bigint[] | undefined {
  let n: number;
  try {
    n = getsockoptLen(fd, SOL_SOCKET, SO_GET_FILTER, null, 0);
  } catch (e) {
    if (e instanceof SyscallError && e.errno === EACCES) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: has an eBPF socket filter (SO_ATTACH_BPF), which cannot be read back`, {}, e);
    }
    throw e;
  }
  if (n === 0) return undefined;
  if (getsockoptInt(fd, SOL_SOCKET, SO_LOCK_FILTER) !== 0) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: its socket filter is locked (SO_LOCK_FILTER), which the image cannot carry`, {});
  }
  const b = Buffer.alloc(n * INSN_BYTES);
  const got = getsockoptLen(fd, SOL_SOCKET, SO_GET_FILTER, b, n);
  const out: bigint[] = [];
  for (let i = 0; i < got; i++) {
    const o = i * INSN_BYTES;
    const code = BigInt(b.readUInt16LE(o));
    const jt = BigInt(b.readUInt8(o + 2));
    const jf = BigInt(b.readUInt8(o + 3));
    const k = BigInt(b.readUInt32LE(o + 4));
    out.push((code << 48n) | (jt << 40n) | (jf << 32n) | k);
  }
  return out;
}

/** Attach the dumped filter to the task's socket `fd`. */
export function restoreFilter(t: RestoreTaskHandle, fd: number, insns: readonly bigint[] | undefined): void {
  if (!insns || insns.length === 0) return;
  const prog = Buffer.alloc(insns.length * INSN_BYTES);
  insns.forEach((v, i) => {
    const o = i * INSN_BYTES;
    prog.writeUInt16LE(Number((v >> 48n) & 0xffffn), o);
    prog.writeUInt8(Number((v >> 40n) & 0xffn), o + 2);
    prog.writeUInt8(Number((v >> 32n) & 0xffn), o + 3);
    prog.writeUInt32LE(Number(v & 0xffffffffn), o + 4);
  });
  const at = t.putBytes(prog);
  // struct sock_fprog: u16 len, padding, pointer to the instructions.
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(insns.length, 0);
  fprog.writeBigUInt64LE(at, 8);
  t.syscall('setsockopt(SO_ATTACH_FILTER)', NR.setsockopt, fd, SOL_SOCKET, SO_ATTACH_FILTER, t.putBytes(fprog), 16);
}
