/**
 * The RPC protocol of `criu service` / `criu swrk`: CRIU images/rpc.proto.
 * One criu_req or criu_resp per SOCK_SEQPACKET packet, no length prefix.
 * Field 40 of criu_opts is unused in CRIU; 128 (check_mounts) is reserved.
 */
import { defineEnum, defineMessage, f } from './types.js';

/**
 * proto2 `[default = ...]` values of criu_opts. Our descriptors carry no
 * defaults (a decoded message leaves absent fields undefined), so the RPC
 * server applies these itself where CRIU would see the default.
 */
export const CRIU_OPTS_DEFAULTS = {
  images_dir_fd: -1,
  log_level: 2,
  cpu_cap: 0xffffffff,
  ghost_limit: 0x100000,
  pre_dump_mode: 'SPLICE',
  network_lock: 'IPTABLES',
  file_validation_method: 'BUILD_ID',
} as const;

defineEnum('criu_cg_mode', { IGNORE: 0, CG_NONE: 1, PROPS: 2, SOFT: 3, FULL: 4, STRICT: 5, DEFAULT: 6 });

defineEnum('criu_network_lock_method', { IPTABLES: 1, NFTABLES: 2, SKIP: 3 });

defineEnum('criu_file_validation_method', { FILE_SIZE: 1, BUILD_ID: 2 });

defineEnum('criu_pre_dump_mode', { SPLICE: 1, VM_READ: 2 });

defineEnum('criu_req_type', { EMPTY: 0, DUMP: 1, RESTORE: 2, CHECK: 3, PRE_DUMP: 4, PAGE_SERVER: 5, NOTIFY: 6, CPUINFO_DUMP: 7, CPUINFO_CHECK: 8, FEATURE_CHECK: 9, VERSION: 10, WAIT_PID: 11, PAGE_SERVER_CHLD: 12, SINGLE_PRE_DUMP: 13 });

defineMessage('criu_page_server_info', [
  f(1, 'address', 'optional', 'string'),
  f(2, 'port', 'optional', 'int32'),
  f(3, 'pid', 'optional', 'int32'),
  f(4, 'fd', 'optional', 'int32'),
]);

defineMessage('criu_veth_pair', [
  f(1, 'if_in', 'required', 'string'),
  f(2, 'if_out', 'required', 'string'),
]);

defineMessage('ext_mount_map', [
  f(1, 'key', 'required', 'string'),
  f(2, 'val', 'required', 'string'),
]);

defineMessage('join_namespace', [
  f(1, 'ns', 'required', 'string'),
  f(2, 'ns_file', 'required', 'string'),
  f(3, 'extra_opt', 'optional', 'string'),
]);

defineMessage('inherit_fd', [
  f(1, 'key', 'required', 'string'),
  f(2, 'fd', 'required', 'int32'),
]);

defineMessage('cgroup_root', [
  f(1, 'ctrl', 'optional', 'string'),
  f(2, 'path', 'required', 'string'),
]);

defineMessage('unix_sk', [
  f(1, 'inode', 'required', 'uint32'),
]);

defineMessage('criu_opts', [
  f(1, 'images_dir_fd', 'required', 'int32'),
  f(2, 'pid', 'optional', 'int32'),
  f(3, 'leave_running', 'optional', 'bool'),
  f(4, 'ext_unix_sk', 'optional', 'bool'),
  f(5, 'tcp_established', 'optional', 'bool'),
  f(6, 'evasive_devices', 'optional', 'bool'),
  f(7, 'shell_job', 'optional', 'bool'),
  f(8, 'file_locks', 'optional', 'bool'),
  f(9, 'log_level', 'optional', 'int32'),
  f(10, 'log_file', 'optional', 'string'),
  f(11, 'ps', 'optional', 'message', { ref: 'criu_page_server_info' }),
  f(12, 'notify_scripts', 'optional', 'bool'),
  f(13, 'root', 'optional', 'string'),
  f(14, 'parent_img', 'optional', 'string'),
  f(15, 'track_mem', 'optional', 'bool'),
  f(16, 'auto_dedup', 'optional', 'bool'),
  f(17, 'work_dir_fd', 'optional', 'int32'),
  f(18, 'link_remap', 'optional', 'bool'),
  f(19, 'veths', 'repeated', 'message', { ref: 'criu_veth_pair' }),
  f(20, 'cpu_cap', 'optional', 'uint32'),
  f(21, 'force_irmap', 'optional', 'bool'),
  f(22, 'exec_cmd', 'repeated', 'string'),
  f(23, 'ext_mnt', 'repeated', 'message', { ref: 'ext_mount_map' }),
  f(24, 'manage_cgroups', 'optional', 'bool'),
  f(25, 'cg_root', 'repeated', 'message', { ref: 'cgroup_root' }),
  f(26, 'rst_sibling', 'optional', 'bool'),
  f(27, 'inherit_fd', 'repeated', 'message', { ref: 'inherit_fd' }),
  f(28, 'auto_ext_mnt', 'optional', 'bool'),
  f(29, 'ext_sharing', 'optional', 'bool'),
  f(30, 'ext_masters', 'optional', 'bool'),
  f(31, 'skip_mnt', 'repeated', 'string'),
  f(32, 'enable_fs', 'repeated', 'string'),
  f(33, 'unix_sk_ino', 'repeated', 'message', { ref: 'unix_sk' }),
  f(34, 'manage_cgroups_mode', 'optional', 'enum', { ref: 'criu_cg_mode' }),
  f(35, 'ghost_limit', 'optional', 'uint32'),
  f(36, 'irmap_scan_paths', 'repeated', 'string'),
  f(37, 'external', 'repeated', 'string'),
  f(38, 'empty_ns', 'optional', 'uint32'),
  f(39, 'join_ns', 'repeated', 'message', { ref: 'join_namespace' }),
  f(41, 'cgroup_props', 'optional', 'string'),
  f(42, 'cgroup_props_file', 'optional', 'string'),
  f(43, 'cgroup_dump_controller', 'repeated', 'string'),
  f(44, 'freeze_cgroup', 'optional', 'string'),
  f(45, 'timeout', 'optional', 'uint32'),
  f(46, 'tcp_skip_in_flight', 'optional', 'bool'),
  f(47, 'weak_sysctls', 'optional', 'bool'),
  f(48, 'lazy_pages', 'optional', 'bool'),
  f(49, 'status_fd', 'optional', 'int32'),
  f(50, 'orphan_pts_master', 'optional', 'bool'),
  f(51, 'config_file', 'optional', 'string'),
  f(52, 'tcp_close', 'optional', 'bool'),
  f(53, 'lsm_profile', 'optional', 'string'),
  f(54, 'tls_cacert', 'optional', 'string'),
  f(55, 'tls_cacrl', 'optional', 'string'),
  f(56, 'tls_cert', 'optional', 'string'),
  f(57, 'tls_key', 'optional', 'string'),
  f(58, 'tls', 'optional', 'bool'),
  f(59, 'tls_no_cn_verify', 'optional', 'bool'),
  f(60, 'cgroup_yard', 'optional', 'string'),
  f(61, 'pre_dump_mode', 'optional', 'enum', { ref: 'criu_pre_dump_mode' }),
  f(62, 'pidfd_store_sk', 'optional', 'int32'),
  f(63, 'lsm_mount_context', 'optional', 'string'),
  f(64, 'network_lock', 'optional', 'enum', { ref: 'criu_network_lock_method' }),
  f(65, 'mntns_compat_mode', 'optional', 'bool'),
  f(66, 'skip_file_rwx_check', 'optional', 'bool'),
  f(67, 'unprivileged', 'optional', 'bool'),
  // used only when images_dir_fd is -1
  f(68, 'images_dir', 'optional', 'string'),
  f(69, 'leave_stopped', 'optional', 'bool'),
  f(70, 'display_stats', 'optional', 'bool'),
  f(71, 'log_to_stderr', 'optional', 'bool'),
  f(72, 'allow_uprobes', 'optional', 'bool'),
  f(73, 'ghost_fiemap', 'optional', 'bool'),
  f(74, 'file_validation_method', 'optional', 'enum', { ref: 'criu_file_validation_method' }),
]);

defineMessage('criu_dump_resp', [
  f(1, 'restored', 'optional', 'bool'),
]);

defineMessage('criu_restore_resp', [
  f(1, 'pid', 'required', 'int32'),
]);

defineMessage('criu_notify', [
  f(1, 'script', 'optional', 'string'),
  f(2, 'pid', 'optional', 'int32'),
]);

defineMessage('criu_features', [
  f(1, 'mem_track', 'optional', 'bool'),
  f(2, 'lazy_pages', 'optional', 'bool'),
  f(3, 'pidfd_store', 'optional', 'bool'),
]);

defineMessage('criu_req', [
  f(1, 'type', 'required', 'enum', { ref: 'criu_req_type' }),
  f(2, 'opts', 'optional', 'message', { ref: 'criu_opts' }),
  f(3, 'notify_success', 'optional', 'bool'),
  f(4, 'keep_open', 'optional', 'bool'),
  f(5, 'features', 'optional', 'message', { ref: 'criu_features' }),
  f(6, 'pid', 'optional', 'uint32'),
]);

defineMessage('criu_resp', [
  f(1, 'type', 'required', 'enum', { ref: 'criu_req_type' }),
  f(2, 'success', 'required', 'bool'),
  f(3, 'dump', 'optional', 'message', { ref: 'criu_dump_resp' }),
  f(4, 'restore', 'optional', 'message', { ref: 'criu_restore_resp' }),
  f(5, 'notify', 'optional', 'message', { ref: 'criu_notify' }),
  f(6, 'ps', 'optional', 'message', { ref: 'criu_page_server_info' }),
  f(7, 'cr_errno', 'optional', 'int32'),
  f(8, 'features', 'optional', 'message', { ref: 'criu_features' }),
  f(9, 'cr_errmsg', 'optional', 'string'),
  f(10, 'version', 'optional', 'message', { ref: 'criu_version' }),
  f(11, 'status', 'optional', 'int32'),
]);

defineMessage('criu_version', [
  f(1, 'major_number', 'required', 'int32'),
  f(2, 'minor_number', 'required', 'int32'),
  f(3, 'gitid', 'optional', 'string'),
  f(4, 'sublevel', 'optional', 'int32'),
  f(5, 'extra', 'optional', 'int32'),
  f(6, 'name', 'optional', 'string'),
]);
