/** A RestoreTaskHandle over a Tracee: scratch memory handed out as a ring. */
import { CriuTsError } from '../errors.js';
import type { RestoreTaskHandle } from '../kinds/index.js';
import type { Tracee } from '../infect/tracee.js';
import { installFd } from './files.js';

/**
 * `pid`: the task (or thread) in our pid namespace; `vpid`: its image pid
 * (the tree's namespace's); `ownPid`: as it sees itself, in a pid
 * namespace nested below the tree's.
 */
export function handleFor(pid: number, tracee: Tracee, vpid = pid, ownPid = vpid): RestoreTaskHandle {
  let off = 0;
  const put = (b: Buffer): bigint => {
    const size = tracee.scratchRange?.size ?? 0;
    if (size === 0) tracee.mapScratch();
    const cap = tracee.scratchRange?.size ?? 0;
    const len = (b.length + 15) & ~15;
    if (len > cap) throw new CriuTsError('ERESTORE', `argument of ${b.length} bytes does not fit the scratch area`, {});
    if (off + len > cap) off = 0;
    const a = tracee.scratchAddr + BigInt(off);
    tracee.writeMem(a, b);
    off += len;
    return a;
  };
  const h: RestoreTaskHandle = {
    pid,
    vpid,
    ownPid,
    tracee,
    putBytes: put,
    putString: (s) => put(Buffer.from(`${s}\0`)),
    syscall: (name, nr, ...args) => tracee.syscall(name, nr, ...args),
    installFd: (ours) => installFd(h, ours),
  };
  return h;
}
