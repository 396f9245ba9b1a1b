/**
 * struct timeval: CRIU images/time.proto (used by ghost files).
 */
import { defineMessage, f } from './types.js';

defineMessage('timeval', [
  f(1, 'tv_sec', 'required', 'uint64'),
  f(2, 'tv_usec', 'required', 'uint64'),
]);
