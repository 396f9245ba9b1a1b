/**
 * Cgroups: CRIU images/cgroup.proto, image cgroup.img (magic 0x59383330).
 */
import { defineMessage, f } from './types.js';

defineMessage('cgroup_perms', [
  f(1, 'mode', 'required', 'uint32'),
  f(2, 'uid', 'required', 'uint32'),
  f(3, 'gid', 'required', 'uint32'),
]);

defineMessage('cgroup_prop_entry', [
  f(1, 'name', 'required', 'string'),
  f(2, 'value', 'required', 'string'),
  f(3, 'perms', 'optional', 'message', { ref: 'cgroup_perms' }),
]);

defineMessage('cgroup_dir_entry', [
  f(1, 'dir_name', 'required', 'string'),
  f(2, 'children', 'repeated', 'message', { ref: 'cgroup_dir_entry' }),
  f(3, 'properties', 'repeated', 'message', { ref: 'cgroup_prop_entry' }),
  f(4, 'dir_perms', 'optional', 'message', { ref: 'cgroup_perms' }),
]);

defineMessage('cg_controller_entry', [
  f(1, 'cnames', 'repeated', 'string'),
  f(2, 'dirs', 'repeated', 'message', { ref: 'cgroup_dir_entry' }),
  // cgroup v2 threaded controllers (added in CRIU 4.x)
  f(3, 'is_threaded', 'optional', 'bool'),
]);

defineMessage('cg_member_entry', [
  f(1, 'name', 'required', 'string'),
  f(2, 'path', 'required', 'string'),
  f(3, 'cgns_prefix', 'optional', 'uint32'),
]);

defineMessage('cg_set_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'ctls', 'repeated', 'message', { ref: 'cg_member_entry' }),
]);

defineMessage('cgroup_entry', [
  f(1, 'sets', 'repeated', 'message', { ref: 'cg_set_entry' }),
  f(2, 'controllers', 'repeated', 'message', { ref: 'cg_controller_entry' }),
]);
