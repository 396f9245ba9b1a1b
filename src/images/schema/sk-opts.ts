/**
 * Generic socket options: CRIU images/sk-opts.proto, embedded in every
 * socket entry; sk_shutdown is used by unix and inet sockets.
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('sk_shutdown', { NONE: 0, READ: 1, WRITE: 2, BOTH: 3 });

defineMessage('sk_opts_entry', [
  f(1, 'so_sndbuf', 'required', 'uint32'),
  f(2, 'so_rcvbuf', 'required', 'uint32'),
  f(3, 'so_snd_tmo_sec', 'required', 'uint64'),
  f(4, 'so_snd_tmo_usec', 'required', 'uint64'),
  f(5, 'so_rcv_tmo_sec', 'required', 'uint64'),
  f(6, 'so_rcv_tmo_usec', 'required', 'uint64'),
  f(7, 'reuseaddr', 'optional', 'bool'),
  f(8, 'so_priority', 'optional', 'uint32'),
  f(9, 'so_rcvlowat', 'optional', 'uint32'),
  f(10, 'so_mark', 'optional', 'uint32'),
  f(11, 'so_passcred', 'optional', 'bool'),
  f(12, 'so_passsec', 'optional', 'bool'),
  f(13, 'so_dontroute', 'optional', 'bool'),
  f(14, 'so_no_check', 'optional', 'bool'),
  f(15, 'so_bound_dev', 'optional', 'string'),
  f(16, 'so_filter', 'repeated', 'fixed64'),
  f(17, 'so_reuseport', 'optional', 'bool'),
  f(18, 'so_broadcast', 'optional', 'bool'),
  f(19, 'so_keepalive', 'optional', 'bool'),
  f(20, 'tcp_keepcnt', 'optional', 'uint32'),
  f(21, 'tcp_keepidle', 'optional', 'uint32'),
  f(22, 'tcp_keepintvl', 'optional', 'uint32'),
  f(23, 'so_oobinline', 'optional', 'uint32'),
  f(24, 'so_linger', 'optional', 'uint32'),
  f(25, 'so_buf_lock', 'optional', 'uint32'),
]);
