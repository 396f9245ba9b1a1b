/**
 * Time namespace offsets (CRIU images/timens.proto): the TIMENS image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('timespec', [
  f(1, 'tv_sec', 'required', 'uint64'),
  f(2, 'tv_nsec', 'required', 'uint64'),
]);
defineMessage('timens_entry', [
  f(1, 'monotonic', 'required', 'message', { ref: 'timespec' }),
  f(2, 'boottime', 'required', 'message', { ref: 'timespec' }),
]);
