/**
 * TTYs: CRIU images/tty.proto. tty_info_entry lives in tty-info.img
 * (magic 0x59453036), tty_file_entry in files.img (or the old tty.img,
 * 0x59433025), tty_data_entry (followed by the raw queued bytes) in
 * tty-data.img (0x59413026).
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('TtyType', { UNKNOWN: 0, PTY: 1, CONSOLE: 2, VT: 3, CTTY: 4, EXT_TTY: 5, SERIAL: 6 });

defineMessage('winsize_entry', [
  f(1, 'ws_row', 'required', 'uint32'),
  f(2, 'ws_col', 'required', 'uint32'),
  f(3, 'ws_xpixel', 'required', 'uint32'),
  f(4, 'ws_ypixel', 'required', 'uint32'),
]);

defineMessage('termios_entry', [
  f(1, 'c_iflag', 'required', 'uint32'),
  f(2, 'c_oflag', 'required', 'uint32'),
  f(3, 'c_cflag', 'required', 'uint32'),
  f(4, 'c_lflag', 'required', 'uint32'),
  f(5, 'c_line', 'required', 'uint32'),
  f(6, 'c_ispeed', 'required', 'uint32'),
  f(7, 'c_ospeed', 'required', 'uint32'),
  f(8, 'c_cc', 'repeated', 'uint32'),
]);

defineMessage('tty_pty_entry', [
  f(1, 'index', 'required', 'uint32'),
]);

defineMessage('tty_data_entry', [
  f(1, 'tty_id', 'required', 'uint32'),
  f(2, 'data', 'required', 'bytes'),
]);

defineMessage('tty_info_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'type', 'required', 'enum', { ref: 'TtyType' }),
  f(3, 'locked', 'required', 'bool'),
  f(4, 'exclusive', 'required', 'bool'),
  f(5, 'packet_mode', 'required', 'bool'),
  f(6, 'sid', 'required', 'uint32'),
  f(7, 'pgrp', 'required', 'uint32'),
  f(8, 'rdev', 'required', 'uint32'),
  f(9, 'termios', 'optional', 'message', { ref: 'termios_entry' }),
  f(10, 'termios_locked', 'optional', 'message', { ref: 'termios_entry' }),
  f(11, 'winsize', 'optional', 'message', { ref: 'winsize_entry' }),
  f(12, 'pty', 'optional', 'message', { ref: 'tty_pty_entry' }),
  f(13, 'dev', 'optional', 'uint32'),
  f(14, 'uid', 'optional', 'uint32'),
  f(15, 'gid', 'optional', 'uint32'),
]);

defineMessage('tty_file_entry', [
  f(1, 'id', 'required', 'uint32'),
  f(2, 'tty_info_id', 'required', 'uint32'),
  f(3, 'flags', 'required', 'uint32', { opts: { hex: true } }),
  f(4, 'fown', 'required', 'message', { ref: 'fown_entry' }),
  f(6, 'regf_id', 'optional', 'uint32'),
]);
