/**
 * SysV IPC namespace: CRIU images/ipc-desc.proto, ipc-var.proto,
 * ipc-shm.proto, ipc-msg.proto, ipc-sem.proto. Images: ipcns-var-<id>.img
 * (0x53115007), ipcns-shm-<id>.img (0x46283044, each entry followed by the
 * segment's pages unless in_pagemaps), ipcns-msg-<id>.img (0x55453737, each
 * queue followed by qnum ipc_msg headers and their payloads),
 * ipcns-sem-<id>.img (0x59573019, each entry followed by nsems u16 values
 * padded to 8 bytes).
 */
import { defineMessage, f } from './types.js';

defineMessage('ipc_desc_entry', [
  f(1, 'key', 'required', 'uint32'),
  f(2, 'uid', 'required', 'uint32'),
  f(3, 'gid', 'required', 'uint32'),
  f(4, 'cuid', 'required', 'uint32'),
  f(5, 'cgid', 'required', 'uint32'),
  f(6, 'mode', 'required', 'uint32'),
  f(7, 'id', 'required', 'uint32'),
]);

defineMessage('ipc_var_entry', [
  f(1, 'sem_ctls', 'repeated', 'uint32'),
  f(2, 'msg_ctlmax', 'required', 'uint32'),
  f(3, 'msg_ctlmnb', 'required', 'uint32'),
  f(4, 'msg_ctlmni', 'required', 'uint32'),
  f(5, 'auto_msgmni', 'required', 'uint32'),
  f(6, 'shm_ctlmax', 'required', 'uint64'),
  f(7, 'shm_ctlall', 'required', 'uint64'),
  f(8, 'shm_ctlmni', 'required', 'uint32'),
  f(9, 'shm_rmid_forced', 'required', 'uint32'),
  f(10, 'mq_queues_max', 'required', 'uint32'),
  f(11, 'mq_msg_max', 'required', 'uint32'),
  f(12, 'mq_msgsize_max', 'required', 'uint32'),
  f(13, 'mq_msg_default', 'optional', 'uint32'),
  f(14, 'mq_msgsize_default', 'optional', 'uint32'),
  f(15, 'msg_next_id', 'optional', 'uint32'),
  f(16, 'sem_next_id', 'optional', 'uint32'),
  f(17, 'shm_next_id', 'optional', 'uint32'),
  // criu-ts's own field, not in CRIU (which saves no POSIX message queue):
  // every queue of the namespace's mqueue filesystem, with its messages.
  f(1000, 'mqueues', 'repeated', 'message', { ref: 'criu_ts_mqueue' }),
]);

defineMessage('ipc_shm_entry', [
  f(1, 'desc', 'required', 'message', { ref: 'ipc_desc_entry' }),
  f(2, 'size', 'required', 'uint64'),
  f(3, 'in_pagemaps', 'optional', 'bool'),
  f(4, 'hugetlb_flag', 'optional', 'uint32'),
]);

defineMessage('ipc_msg', [
  f(1, 'mtype', 'required', 'uint64'),
  f(2, 'msize', 'required', 'uint32'),
]);

defineMessage('ipc_msg_entry', [
  f(1, 'desc', 'required', 'message', { ref: 'ipc_desc_entry' }),
  f(2, 'qbytes', 'required', 'uint32'),
  f(3, 'qnum', 'required', 'uint32'),
]);

defineMessage('ipc_sem_entry', [
  f(1, 'desc', 'required', 'message', { ref: 'ipc_desc_entry' }),
  f(2, 'nsems', 'required', 'uint32'),
]);
