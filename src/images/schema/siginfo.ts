/**
 * Pending signals (CRIU images/siginfo.proto).
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('siginfo_entry', [
  f(1, 'siginfo', 'required', 'bytes'),
]);
defineMessage('signal_queue_entry', [
  f(1, 'signals', 'repeated', 'message', { ref: 'siginfo_entry' }),
]);
