/**
 * Task kernel object ids (CRIU images/core.proto's task_kobj_ids_entry): the IDS image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('task_kobj_ids_entry', [
  f(1, 'vm_id', 'required', 'uint32'),
  f(2, 'files_id', 'required', 'uint32'),
  f(3, 'fs_id', 'required', 'uint32'),
  f(4, 'sighand_id', 'required', 'uint32'),
  f(5, 'pid_ns_id', 'optional', 'uint32'),
  f(6, 'net_ns_id', 'optional', 'uint32'),
  f(7, 'ipc_ns_id', 'optional', 'uint32'),
  f(8, 'uts_ns_id', 'optional', 'uint32'),
  f(9, 'mnt_ns_id', 'optional', 'uint32'),
  f(10, 'user_ns_id', 'optional', 'uint32'),
  f(11, 'cgroup_ns_id', 'optional', 'uint32'),
  f(12, 'time_ns_id', 'optional', 'uint32'),
  // criu-ts's own field, not in CRIU: the pid namespace the task's next
  // children are born in, when not its own (the parent `unshare -fp`
  // leaves behind: the namespace its child is the init of). Written only
  // then; CRIU and crit skip it as an unknown field.
  f(1000, 'pid_for_children_ns_id', 'optional', 'uint32'),
]);
