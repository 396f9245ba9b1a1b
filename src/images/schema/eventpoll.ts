/**
 * epoll (CRIU images/eventpoll.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('eventpoll_tfd_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'tfd', 'required', 'uint32'),
  f(3, 'events', 'required', 'uint32'),
  f(4, 'data', 'required', 'uint64'),
  f(5, 'dev', 'optional', 'uint32'),
  f(6, 'inode', 'optional', 'uint64'),
  f(7, 'pos', 'optional', 'uint64'),
]);
defineMessage('eventpoll_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32'),
  f(3, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(4, 'tfd', 'repeated', 'message', { ref: 'eventpoll_tfd_entry' }),
]);
