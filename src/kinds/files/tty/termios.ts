/**
 * Terminal state through ioctls: termios (kernel struct termios2, with
 * the speeds), the locked termios, the window size, and the pty flags,
 * read from our pidfd_getfd copy at dump and set inside the task at
 * restore. Layouts are the kernel's (asm-generic/termbits.h), NCCS = 19.
 */
import { ioctlTry, ioctl, fdOfTask, closeQuiet, EPERM, errnoName } from '../../../sys/index.js';
import { CriuTsError } from '../../../errors.js';
import type { TermiosEntry, WinsizeEntry } from '../../../images/messages.js';
import type { RestoreTaskHandle } from '../../types.js';
import { NR } from '../../../sys/index.js';

export const IOC = {
  TCGETS2: 0x802c542a, TCSETS2: 0x402c542b,
  TIOCGLCKTRMIOS: 0x5456, TIOCSLCKTRMIOS: 0x5457,
  TIOCGWINSZ: 0x5413, TIOCSWINSZ: 0x5414,
  TIOCGPTN: 0x80045430, TIOCSPTLCK: 0x40045431, TIOCGPTLCK: 0x80045439,
  TIOCGPKT: 0x80045438, TIOCPKT: 0x5420, TIOCGEXCL: 0x80045440, TIOCEXCL: 0x540c,
  TIOCGSID: 0x5429, TIOCGPTPEER: 0x5441, TIOCGPGRP: 0x540f, TIOCSPGRP: 0x5410, TIOCSCTTY: 0x540e, TIOCGDEV: 0x80045432,
} as const;

const NCCS = 19;
const TERMIOS_BYTES = 36;
const TERMIOS2_BYTES = 44;

/** An int-returning get ioctl on our fd; undefined when the tty does not answer it. */
export function ioctlInt(fd: number, req: number): number | undefined {
  const b = Buffer.alloc(4);
  return ioctlTry(fd, req, b) < 0 ? undefined : b.readInt32LE(0);
}

function decodeTermios(b: Buffer, withSpeeds: boolean): TermiosEntry {
  const cc: number[] = [];
  for (let i = 0; i < NCCS; i++) cc.push(b.readUInt8(17 + i));
  return {
    c_iflag: b.readUInt32LE(0), c_oflag: b.readUInt32LE(4), c_cflag: b.readUInt32LE(8), c_lflag: b.readUInt32LE(12),
    c_line: b.readUInt8(16),
    c_ispeed: withSpeeds ? b.readUInt32LE(36) : 0, c_ospeed: withSpeeds ? b.readUInt32LE(40) : 0,
    c_cc: cc,
  };
}

function encodeTermios(t: TermiosEntry, withSpeeds: boolean): Buffer {
  const b = Buffer.alloc(withSpeeds ? TERMIOS2_BYTES : TERMIOS_BYTES);
  b.writeUInt32LE(t.c_iflag >>> 0, 0);
  b.writeUInt32LE(t.c_oflag >>> 0, 4);
  b.writeUInt32LE(t.c_cflag >>> 0, 8);
  b.writeUInt32LE(t.c_lflag >>> 0, 12);
  b.writeUInt8(t.c_line & 0xff, 16);
  (t.c_cc ?? []).slice(0, NCCS).forEach((c, i) => b.writeUInt8(c & 0xff, 17 + i));
  if (withSpeeds) {
    b.writeUInt32LE(t.c_ispeed >>> 0, 36);
    b.writeUInt32LE(t.c_ospeed >>> 0, 40);
  }
  return b;
}

export interface TtyState {
  termios: TermiosEntry | undefined;
  termiosLocked: TermiosEntry | undefined;
  winsize: WinsizeEntry | undefined;
}

export function readTtyState(fd: number): TtyState {
  const t2 = Buffer.alloc(TERMIOS2_BYTES);
  const tl = Buffer.alloc(TERMIOS_BYTES);
  const ws = Buffer.alloc(8);
  return {
    termios: ioctlTry(fd, IOC.TCGETS2, t2) < 0 ? undefined : decodeTermios(t2, true),
    termiosLocked: ioctlTry(fd, IOC.TIOCGLCKTRMIOS, tl) < 0 ? undefined : decodeTermios(tl, false),
    winsize: ioctlTry(fd, IOC.TIOCGWINSZ, ws) < 0 ? undefined : {
      ws_row: ws.readUInt16LE(0), ws_col: ws.readUInt16LE(2), ws_xpixel: ws.readUInt16LE(4), ws_ypixel: ws.readUInt16LE(6),
    },
  };
}

/** Set termios (locked first: it limits what TCSETS2 may change) and the window size inside the task. */
export function writeTtyState(t: RestoreTaskHandle, fd: number, s: { termios?: TermiosEntry; termios_locked?: TermiosEntry; winsize?: WinsizeEntry }): void {
  if (s.termios_locked) setLockedTermios(t, fd, encodeTermios(s.termios_locked, false));
  if (s.termios) t.syscall('ioctl(TCSETS2)', NR.ioctl, fd, IOC.TCSETS2, t.putBytes(encodeTermios(s.termios, true)));
  if (s.winsize) {
    const ws = Buffer.alloc(8);
    ws.writeUInt16LE(s.winsize.ws_row & 0xffff, 0);
    ws.writeUInt16LE(s.winsize.ws_col & 0xffff, 2);
    ws.writeUInt16LE(s.winsize.ws_xpixel & 0xffff, 4);
    ws.writeUInt16LE(s.winsize.ws_ypixel & 0xffff, 6);
    t.syscall('ioctl(TIOCSWINSZ)', NR.ioctl, fd, IOC.TIOCSWINSZ, t.putBytes(ws));
  }
}

/**
 * TIOCSLCKTRMIOS needs CAP_SYS_ADMIN in the initial user namespace: a task
 * in a user namespace of its own (a container's pty) is refused (EPERM),
 * so then it is set from our side, on our copy of the task's fd (the same
 * terminal). CRIU skips it when the value is already the image's; we set it.
 */
function setLockedTermios(t: RestoreTaskHandle, fd: number, locked: Buffer): void {
  const r = t.tracee.syscallRaw(NR.ioctl, fd, IOC.TIOCSLCKTRMIOS, t.putBytes(locked));
  if (r >= 0n) return;
  if (r !== -BigInt(EPERM)) throw new CriuTsError('ERESTORE', `ioctl(TIOCSLCKTRMIOS) in task ${t.pid}: ${errnoName(Number(-r))}`, { pid: t.pid, errno: Number(-r) });
  const ours = fdOfTask(t.pid, fd);
  try {
    ioctl(ours, IOC.TIOCSLCKTRMIOS, locked);
  } finally {
    closeQuiet(ours);
  }
}

/** A one-int ioctl argument passed by pointer inside the task. */
export function intArg(t: RestoreTaskHandle, v: number): bigint {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return t.putBytes(b);
}
