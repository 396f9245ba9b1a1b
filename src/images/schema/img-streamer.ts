/**
 * Image streamer protocol (criu-image-streamer): CRIU
 * images/img-streamer.proto; not an image, messages on the streamer socket.
 */
import { defineMessage, f } from './types.js';

defineMessage('img_streamer_request_entry', [
  f(1, 'filename', 'required', 'string'),
]);

defineMessage('img_streamer_reply_entry', [
  f(1, 'exists', 'required', 'bool'),
]);
