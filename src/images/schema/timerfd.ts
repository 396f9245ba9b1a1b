/**
 * timerfd (CRIU images/timerfd.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('timerfd_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(3, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(4, 'clockid', 'required', 'uint32'),
  f(5, 'ticks', 'required', 'uint64'),
  f(6, 'settime_flags', 'required', 'uint32', { opts: { hex: true } }),
  f(7, 'vsec', 'required', 'uint64'),
  f(8, 'vnsec', 'required', 'uint64'),
  f(9, 'isec', 'required', 'uint64'),
  f(10, 'insec', 'required', 'uint64'),
]);
