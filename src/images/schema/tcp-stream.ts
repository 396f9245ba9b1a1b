/**
 * TCP connection state: CRIU images/tcp-stream.proto. tcp_stream_entry is the
 * one entry of tcp-stream-<ino>.img (magic 0x51465506), followed by the raw
 * in-queue then out-queue bytes. (tcp_opts_entry of the same .proto lives with
 * sk-inet, which embeds it.)
 */
import { defineMessage, f } from './types.js';

defineMessage('tcp_stream_entry', [
  f(1, 'inq_len', 'required', 'uint32'),
  f(2, 'inq_seq', 'required', 'uint32'),
  f(3, 'outq_len', 'required', 'uint32'),
  f(4, 'outq_seq', 'required', 'uint32'),
  f(5, 'opt_mask', 'required', 'uint32', { opts: { hex: true } }),
  f(6, 'snd_wscale', 'required', 'uint32'),
  f(7, 'mss_clamp', 'required', 'uint32'),
  f(8, 'rcv_wscale', 'optional', 'uint32'),
  f(9, 'timestamp', 'optional', 'uint32'),
  f(10, 'cork', 'optional', 'bool'),
  f(11, 'nodelay', 'optional', 'bool'),
  f(12, 'unsq_len', 'optional', 'uint32'),
  f(13, 'snd_wl1', 'optional', 'uint32'),
  f(14, 'snd_wnd', 'optional', 'uint32'),
  f(15, 'max_window', 'optional', 'uint32'),
  f(16, 'rcv_wnd', 'optional', 'uint32'),
  f(17, 'rcv_wup', 'optional', 'uint32'),
]);
