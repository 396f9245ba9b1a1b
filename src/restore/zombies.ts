/**
 * Dead tasks of the dump (zombies): created like the others, then made to
 * exit with their dumped status, so their parent holds them as it did.
 */
import { NR, PR, SIGKILL, SIGCHLD } from '../sys/index.js';
import { holdSigmask, release, releaseQuiet } from '../infect/ptrace-state.js';
import { collectExit } from '../infect/tracee.js';
import { handleFor } from './handle.js';
import type { DumpImages } from './images.js';
import { ownPid, type RestoreNode, type RestorePlan } from './plan.js';

/** Dead tasks exit with their dumped status; their parent keeps them as zombies, as it had them. */
export function makeZombies(plan: RestorePlan, img: DumpImages): void {
  for (const n of plan.nodes) {
    if (n.images || n.helper || !n.tracee) continue;
    // Its name, as the parent's `ps` showed it (zombies keep their comm).
    const comm = img.zombies.get(n.pid)?.tc?.comm;
    if (comm) {
      try {
        const h = handleFor(n.real, n.tracee, n.pid, ownPid(n));
        h.syscall('prctl(SET_NAME)', NR.prctl, PR.SET_NAME, h.putString(comm.slice(0, 15)));
      } catch {
        // a name is not worth failing the restore for
      }
    }
    const sig = n.exitCode & 0x7f;
    if (sig !== 0) {
      // Killed by a signal: queue it, unblocked, and let the task go; it
      // dies of it before running a single instruction of its own.
      holdSigmask(n.real, 0n);
      process.kill(n.real, sig);
      // SIGKILL ends it at once, out of its ptrace stop: nothing may be left to detach.
      if (sig === SIGKILL) releaseQuiet(n.real, 0);
      else release(n.real, 0);
    } else {
      try {
        n.tracee.syscallRaw(NR.exit_group, (n.exitCode >> 8) & 0xff);
      } catch {
        // the task is gone, as wanted
      }
    }
    collectExit(n.real);
    n.tracee = undefined;
    // Its death queued a SIGCHLD in the parent that the original had long received.
    const p = n.parent;
    if (p?.tracee) consumeSignal(p.tracee, SIGCHLD);
  }
}

/** Take a signal the restore itself caused out of a held task's queue. */
export function consumeSignal(t: NonNullable<RestoreNode['tracee']>, sig: number): void {
  const h = handleFor(t.tid, t);
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(1n << BigInt(sig - 1));
  // Wait for it (up to 0.5 s), not just look: the child's death may not have
  // reached its parent yet, and a SIGCHLD left behind would be one the
  // original never got (restore --verify caught it). Every signal is
  // blocked in a held task, so the SIGCHLD is queued, never discarded.
  const ts = Buffer.alloc(16);
  ts.writeBigInt64LE(500_000_000n, 8);
  const a = h.putBytes(Buffer.concat([set, ts]));
  t.syscallRaw(NR.rt_sigtimedwait, a, 0, a + 8n, 8);
}
