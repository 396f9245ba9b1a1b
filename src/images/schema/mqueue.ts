/**
 * POSIX message queues: criu-ts's own messages (CRIU saves no queue).
 * They travel inside CRIU's images in field numbers CRIU does not use:
 * ext_file_entry.mqueue (an fd on a queue) and ipc_var_entry.mqueues
 * (every queue of a dumped ipc namespace), so CRIU's crit still decodes
 * those images, skipping them.
 */
import { defineMessage, f } from './types.js';

defineMessage('criu_ts_mq_message', [
  f(1, 'prio', 'required', 'uint32'),
  f(2, 'data', 'required', 'bytes'),
]);

/** A queue: its name (without '/'), attributes, owner, and its messages in the order they are received. */
defineMessage('criu_ts_mqueue', [
  f(1, 'name', 'required', 'string'),
  f(2, 'mode', 'required', 'uint32', { opts: { hex: true } }),
  f(3, 'uid', 'required', 'uint32'),
  f(4, 'gid', 'required', 'uint32'),
  f(5, 'maxmsg', 'required', 'uint64'),
  f(6, 'msgsize', 'required', 'uint64'),
  f(7, 'messages', 'repeated', 'message', { ref: 'criu_ts_mq_message' }),
]);

/**
 * An open queue. `where`: 0, a queue of criu-ts's own ipc namespace,
 * reopened by name at restore (it is not the tree's: left in place, as a
 * file on disk); 1, a queue of the tree's ipc namespace, made again with
 * that namespace (ipc_var_entry.mqueues) and reopened by name; 2, an
 * unlinked queue, saved whole in the first entry of it (`queue`).
 */
defineMessage('criu_ts_mq_file', [
  f(1, 'name', 'required', 'string'),
  f(2, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(3, 'where', 'required', 'uint32'),
  f(4, 'queue', 'optional', 'message', { ref: 'criu_ts_mqueue' }),
  // For an unlinked queue: the file entry whose `queue` holds it (this
  // one's own id for the first description of it met at dump; others open
  // the same queue again).
  f(5, 'queue_file', 'optional', 'uint32'),
]);
