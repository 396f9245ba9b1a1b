/**
 * Process tree (CRIU images/pstree.proto): the PSTREE image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('pstree_entry', [
  f(1, 'pid', 'required', 'uint32'),
  f(2, 'ppid', 'required', 'uint32'),
  f(3, 'pgid', 'required', 'uint32'),
  f(4, 'sid', 'required', 'uint32'),
  f(5, 'threads', 'repeated', 'uint32'),
  // criu-ts's own fields, not in CRIU (whose pstree_entry holds one pid per
  // task, as the tree's pid namespace sees it): for a task in a pid
  // namespace nested below the tree's, its numbers in each namespace from
  // the one just below the tree's down to its own (NSpid after the tree's
  // level, outermost first; a nested init's last is 1). Written only for
  // such a task; CRIU and crit skip them as unknown fields (CRIU would then
  // restore the task in the tree's namespace: docs/namespaces.md).
  // ns_pid: the task's; ns_threads: every thread's the same way, thread
  // after thread (threads.length x ns_pid.length, in `threads` order);
  // ns_pgid/ns_sid: its group's and session's (NSpgid/NSsid, 0 at a level
  // where the leader is not visible).
  f(1000, 'ns_pid', 'repeated', 'uint32'),
  f(1001, 'ns_threads', 'repeated', 'uint32'),
  f(1002, 'ns_pgid', 'repeated', 'uint32'),
  f(1003, 'ns_sid', 'repeated', 'uint32'),
]);
