/**
 * itimers and POSIX timers (CRIU images/timer.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('itimer_entry', [
  f(1, 'isec', 'required', 'uint64'),
  f(2, 'iusec', 'required', 'uint64'),
  f(3, 'vsec', 'required', 'uint64'),
  f(4, 'vusec', 'required', 'uint64'),
]);
defineMessage('posix_timer_entry', [
  f(1, 'it_id', 'required', 'uint32'),
  f(2, 'clock_id', 'required', 'uint32'),
  f(3, 'si_signo', 'required', 'uint32'),
  f(4, 'it_sigev_notify', 'required', 'uint32'),
  f(5, 'sival_ptr', 'required', 'uint64'),
  f(6, 'overrun', 'required', 'uint32'),
  f(7, 'isec', 'required', 'uint64'),
  f(8, 'insec', 'required', 'uint64'),
  f(9, 'vsec', 'required', 'uint64'),
  f(10, 'vnsec', 'required', 'uint64'),
  f(11, 'notify_thread_id', 'optional', 'int32'),
]);
defineMessage('task_timers_entry', [
  f(1, 'real', 'required', 'message', { ref: 'itimer_entry' }),
  f(2, 'virt', 'required', 'message', { ref: 'itimer_entry' }),
  f(3, 'prof', 'required', 'message', { ref: 'itimer_entry' }),
  f(4, 'posix', 'repeated', 'message', { ref: 'posix_timer_entry' }),
]);
