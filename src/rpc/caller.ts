/**
 * Who is asking (docs/security.md). The kernel says who connected:
 * SO_PEERCRED gives the pid and effective uid/gid at connect time, and
 * SO_PEERPIDFD a pidfd for that very process, so a pid reused after the
 * caller died can never be mistaken for it. Its real ids, groups and
 * capabilities are read from /proc/PID/status and are believed only if
 * the pidfd still names a live process afterwards (the usual pidfd check:
 * the pid was not recycled while we read).
 *
 * A caller with euid 0 and CAP_SYS_PTRACE acts with our full rights, as
 * before; anyone else gets `CallerCreds` and every dump and restore is
 * limited to what that user could do itself.
 */
import type { CallerCreds } from '../api/options.js';
import { CriuTsError } from '../errors.js';
import { closeQuiet, peerPidfd, sysTry, NR, CAP_SYS_PTRACE } from '../sys/index.js';
import { parseStatus, type ProcStatus } from '../proc/index.js';
import type { PeerCred } from '../sys/index.js';


export interface Caller {
  pid: number;
  /** undefined: privileged (acts as root, as criu-ts itself) */
  creds: CallerCreds | undefined;
}

/** Identify the peer of connection `fd`; `cred` is its SO_PEERCRED. */
export function identifyCaller(fd: number, cred: PeerCred): Caller {
  const pidfd = peerPidfd(fd);
  let status: ProcStatus;
  try {
    status = parseStatus(cred.pid);
    // Still the process that connected? (pidfd_send_signal with signal 0 fails with ESRCH once it exited.)
    if (pidfd !== undefined && sysTry(NR.pidfd_send_signal, pidfd, 0, 0, 0) !== 0) throw new Error('the caller exited');
  } catch (e) {
    throw new CriuTsError('EPERM', `cannot identify the RPC caller (pid ${cred.pid}): ${(e as Error).message}`, { pid: cred.pid, errno: 1 }, e);
  } finally {
    if (pidfd !== undefined) closeQuiet(pidfd);
  }
  const { groups, capEff } = status;
  const capSysPtrace = (capEff & (1n << BigInt(CAP_SYS_PTRACE))) !== 0n;
  // SO_PEERCRED's ids are the ones at connect time; the process's own now must not be more than those.
  const uid = status.uid[0];
  const gid = status.gid[0];
  if (cred.uid === 0 && uid === 0 && capSysPtrace) return { pid: cred.pid, creds: undefined };
  // Real ids decide (PTRACE_MODE_ATTACH_REALCREDS); a set-id client is taken as its real user.
  return { pid: cred.pid, creds: { uid, gid, groups, capSysPtrace, pid: cred.pid } };
}
