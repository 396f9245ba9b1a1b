/**
 * Dump-wide facts (CRIU images/inventory.proto): the INVENTORY image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('lsmtype', { NO_LSM: 0, SELINUX: 1, APPARMOR: 2 });
defineMessage('plugins_entry', [
  f(12, 'plugins', 'repeated', 'string'),
]);
defineMessage('inventory_entry', [
  f(1, 'img_version', 'required', 'uint32'),
  f(2, 'fdinfo_per_id', 'optional', 'bool'),
  f(3, 'root_ids', 'optional', 'message', { ref: 'task_kobj_ids_entry' }),
  f(4, 'ns_per_id', 'optional', 'bool'),
  f(5, 'root_cg_set', 'optional', 'uint32'),
  f(6, 'lsmtype', 'optional', 'enum', { ref: 'lsmtype' }),
  f(8, 'dump_uptime', 'optional', 'uint64'),
  f(9, 'pre_dump_mode', 'optional', 'uint32'),
  f(10, 'tcp_close', 'optional', 'bool'),
  f(11, 'network_lock_method', 'optional', 'uint32'),
  f(12, 'plugins_entry', 'optional', 'message', { ref: 'plugins_entry' }),
  f(13, 'dump_criu_run_id', 'optional', 'string'),
  f(14, 'allow_uprobes', 'optional', 'bool'),
]);
