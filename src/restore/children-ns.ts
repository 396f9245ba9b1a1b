/**
 * The pid namespace a restored task's next children are born in, when it
 * is not the task's own: what `unshare -fp` leaves in its parent.
 */
import { NR, CLONE_NEWPID } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import type { RestoreTaskHandle } from '../kinds/index.js';
import type { RestoreNode, RestorePlan } from './plan.js';

/**
 * A parent `unshare -fp` left behind: its next children go to the pid
 * namespace one of its children is the init of (ids-PID.img
 * pid_for_children_ns_id). It enters it (setns on a pidfd of that child,
 * as it names it) once its threads exist: clone with CLONE_THREAD is
 * refused while pid_for_children is not the task's own namespace.
 */
export function enterChildrenPidNs(n: RestoreNode, plan: RestorePlan, h: RestoreTaskHandle): void {
  const ids = n.images?.ids;
  const id = ids?.pid_for_children_ns_id;
  if (id === undefined || id === ids?.pid_ns_id) return;
  const init = plan.nodes.find((c) => c.ppid === n.pid && !c.helper && c.images?.ids.pid_ns_id === id && c.levels.length === n.levels.length + 1 && c.levels.at(-1) === 1);
  if (!init) throw new CriuTsError('EIMAGE', `task ${n.pid}: its children's pid namespace (ns id ${id}) has no init among its children`, { pid: n.pid, nsId: id });
  const seen = n.levels.length === 0 ? init.pid : (init.levels[n.levels.length - 1] ?? 0);
  const fd = Number(h.syscall(`pidfd_open(${seen})`, NR.pidfd_open, seen, 0));
  try {
    h.syscall('setns(CLONE_NEWPID)', NR.setns, fd, CLONE_NEWPID);
  } finally {
    h.syscall('close', NR.close, fd);
  }
}
