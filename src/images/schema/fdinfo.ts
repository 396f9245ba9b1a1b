/**
 * File descriptors and file objects (CRIU images/fdinfo.proto): FDINFO and FILES images.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('fd_types', { UND: 0, REG: 1, PIPE: 2, FIFO: 3, INETSK: 4, UNIXSK: 5, EVENTFD: 6, EVENTPOLL: 7, INOTIFY: 8, SIGNALFD: 9, PACKETSK: 10, TTY: 11, FANOTIFY: 12, NETLINKSK: 13, NS: 14, TUNF: 15, EXT: 16, TIMERFD: 17, MEMFD: 18, BPFMAP: 19, PIDFD: 20, CTL_TTY: 65534, AUTOFS_PIPE: 65535 });
defineMessage('fdinfo_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'flags', 'required', 'uint32'),
  f(3, 'type', 'required', 'enum', { ref: 'fd_types' }),
  f(4, 'fd', 'required', 'uint32'),
  f(5, 'xattr_security_selinux', 'optional', 'string'),
]);
defineMessage('file_entry', [
  f(1, 'type', 'required', 'enum', { ref: 'fd_types' }),
  f(2, 'id', 'required', 'uint32'),
  f(3, 'reg', 'optional', 'message', { ref: 'reg_file_entry' }),
  f(4, 'isk', 'optional', 'message', { ref: 'inet_sk_entry' }),
  f(5, 'nsf', 'optional', 'message', { ref: 'ns_file_entry' }),
  f(6, 'psk', 'optional', 'message', { ref: 'packet_sock_entry' }),
  f(7, 'nlsk', 'optional', 'message', { ref: 'netlink_sk_entry' }),
  f(8, 'efd', 'optional', 'message', { ref: 'eventfd_file_entry' }),
  f(9, 'epfd', 'optional', 'message', { ref: 'eventpoll_file_entry' }),
  f(10, 'sgfd', 'optional', 'message', { ref: 'signalfd_entry' }),
  f(11, 'tunf', 'optional', 'message', { ref: 'tunfile_entry' }),
  f(12, 'tfd', 'optional', 'message', { ref: 'timerfd_entry' }),
  f(13, 'ify', 'optional', 'message', { ref: 'inotify_file_entry' }),
  f(14, 'ffy', 'optional', 'message', { ref: 'fanotify_file_entry' }),
  f(15, 'ext', 'optional', 'message', { ref: 'ext_file_entry' }),
  f(16, 'usk', 'optional', 'message', { ref: 'unix_sk_entry' }),
  f(17, 'fifo', 'optional', 'message', { ref: 'fifo_entry' }),
  f(18, 'pipe', 'optional', 'message', { ref: 'pipe_entry' }),
  f(19, 'tty', 'optional', 'message', { ref: 'tty_file_entry' }),
  f(20, 'memfd', 'optional', 'message', { ref: 'memfd_file_entry' }),
  f(21, 'bpf', 'optional', 'message', { ref: 'bpfmap_file_entry' }),
  f(22, 'pidfd', 'optional', 'message', { ref: 'pidfd_entry' }),
]);
