/**
 * Bytes queued in a pty pair whose master a task of the dump holds, both
 * ways: the slave's input (written into the master, not yet read from the
 * slave) and the master's input (written by the slave, not yet read from
 * the master). They go to CRIU's tty-data.img: one tty_data_entry per
 * queue, tty_id = the tty_info id of the end that reads it.
 *
 * A tty has no peek, so the queues are emptied at the very end of the dump
 * (atEnd: every other image is written, the tasks are still frozen), and
 * put back whenever the tasks go on running (a dump that fails after that
 * point, --leave-running): nobody sees them empty.
 *
 * Putting bytes back (at restore, or after such a dump) goes through
 * TIOCSTI, one byte at a time, straight into the line discipline of the
 * end that reads them, as if they had just arrived. On the slave side the
 * input processing is switched off for the time of it (echo, signals, CR/NL
 * translation, flow control, erase/kill), so the bytes land as they were,
 * then the termios is set back.
 *
 * Canonical mode keeps line boundaries, and they are kept: complete lines
 * are read one read() each; a line that ended with EOF (^D: the read gives
 * the line without terminator) gets the EOF character back after it; the
 * partial line still being typed is read with ICANON off for a moment. A
 * special character inside a line (only there if it was quoted with
 * LNEXT) is quoted again. The saved data is thus what one would type into
 * the master to get the same queue back, which is what CRIU writes at
 * restore too (CRIU does it with echo on, so its master sees an echo).
 *
 * Limits: a pty master in packet mode with bytes queued is refused (each
 * read carries a status byte of its own).
 */
import { closeSync, constants as fsc } from 'node:fs';
import { closeQuiet, dup, ioctlTry, read, write, errnoName, EAGAIN, EIO, O_CLOEXEC, TIOCSTI, TIOCINQ } from '../../../sys/index.js';
import { CriuTsError } from '../../../errors.js';
import { stateKey, type DumpContext, type RestoreContext } from '../../types.js';
import { IOC } from './termios.js';
import { logger } from '../../../log.js';

const log = logger('tty');

/** The info id of pty `index`'s end (CRIU: index * 2, + 1 for the master). */
const infoId = (index: number, master: boolean): number => index * 2 + (master ? 1 : 0);

/** The n_tty read buffer holds 4 KiB: a queue never holds more. */
const QUEUE_MAX = 4096;

// struct termios2 offsets and the bits we switch (asm-generic/termbits.h)
const T_IFLAG = 0;
const T_OFLAG = 4;
const T_LFLAG = 12;
const OPOST = 1;
const T_CC = 17;
const ICANON = 0o2;
const ISIG = 0o1;
const IEXTEN = 0o100000;
const ECHO_BITS = 0o10 | 0o20 | 0o40 | 0o100 | 0o1000 | 0o2000 | 0o4000; // ECHO ECHOE ECHOK ECHONL ECHOCTL ECHOPRT ECHOKE
const INPUT_XLATE = 0o40 | 0o100 | 0o200 | 0o400 | 0o1000 | 0o2000 | 0o10000 | 0o20 | 0o10; // ISTRIP INLCR IGNCR ICRNL IUCLC IXON IXOFF INPCK PARMRK
const VERASE = 2, VKILL = 3, VEOF = 4, VTIME = 5, VMIN = 6, VEOL = 11, VREPRINT = 12, VWERASE = 14, VLNEXT = 15, VEOL2 = 16;

function getTermios(fd: number): Buffer | undefined {
  const b = Buffer.alloc(44);
  return ioctlTry(fd, IOC.TCGETS2, b) < 0 ? undefined : b;
}

function setTermios(fd: number, b: Buffer, what: string): void {
  const r = ioctlTry(fd, IOC.TCSETS2, b);
  if (r < 0) throw new CriuTsError('ESYSCALL', `${what}: TCSETS2: ${errnoName(-r)}`, { errno: -r });
}

function inq(fd: number): number {
  const n = Buffer.alloc(4);
  return ioctlTry(fd, TIOCINQ, n) < 0 ? 0 : n.readInt32LE(0);
}

/** Feed `data` into the input queue of the tty `fd` is open on, byte by byte, as if it had just arrived. */
function inject(fd: number, data: Buffer, what: string): void {
  const b = Buffer.alloc(1);
  for (const c of data) {
    b[0] = c;
    const r = ioctlTry(fd, TIOCSTI, b);
    if (r < 0) throw new CriuTsError('ESYSCALL', `${what}: TIOCSTI: ${errnoName(-r)}`, { errno: -r });
  }
}

/**
 * Open our own fd on the slave of the pair `masterFd` is the master of (a
 * new open file description: its flags are ours), with TIOCGPTPEER: the
 * slave of that very pair, in whichever devpts instance it lives (a
 * container's, mounted in another mount namespace, has no path here). A
 * locked pty refuses opens of its slave: it is unlocked for that moment.
 */
function openSlave(masterFd: number, what: string): number {
  const flags = fsc.O_RDWR | fsc.O_NOCTTY | fsc.O_NONBLOCK | O_CLOEXEC;
  let fd = ioctlTry(masterFd, IOC.TIOCGPTPEER, flags);
  const lock = Buffer.alloc(4);
  if (fd === -EIO && ioctlTry(masterFd, IOC.TIOCGPTLCK, lock) >= 0 && lock.readInt32LE(0) === 1) {
    ioctlTry(masterFd, IOC.TIOCSPTLCK, Buffer.alloc(4));
    try {
      fd = ioctlTry(masterFd, IOC.TIOCGPTPEER, flags);
    } finally {
      ioctlTry(masterFd, IOC.TIOCSPTLCK, lock);
    }
  }
  if (fd < 0) throw new CriuTsError('ESYSCALL', `${what}: cannot open its slave (TIOCGPTPEER): ${errnoName(-fd)}`, { errno: -fd });
  return fd;
}

/** read() once; undefined on EAGAIN */
function readOnce(fd: number, buf: Buffer): number | undefined {
  try {
    return read(fd, buf);
  } catch (err) {
    if ((err as { errno?: number }).errno === EAGAIN) return undefined;
    throw err;
  }
}

/** Empty the master's queue (what the slave wrote). The master's own line discipline is always raw. */
function drainMaster(fd: number): Buffer {
  const parts: Buffer[] = [];
  for (let n = inq(fd); n > 0; n = inq(fd)) {
    const b = Buffer.alloc(n);
    const got = read(fd, b);
    if (got <= 0) break;
    parts.push(b.subarray(0, got));
  }
  return Buffer.concat(parts);
}

/**
 * Empty the slave's input queue through our own nonblocking fd `fd`, and
 * return it as the bytes to type to get it back (see the file comment).
 */
function drainSlave(fd: number, what: string): Buffer {
  const t = getTermios(fd);
  if (!t) throw new CriuTsError('EDUMP', `${what}: cannot read its termios`, {});
  const lflag = t.readUInt32LE(T_LFLAG);
  const canon = (lflag & ICANON) !== 0;
  const cc = (i: number): number => t[T_CC + i] ?? 0;
  const quoting = canon && (lflag & IEXTEN) !== 0 && cc(VLNEXT) !== 0;
  const specials = new Set([cc(VEOF), cc(VEOL), cc(VEOL2), cc(VLNEXT), cc(VERASE), cc(VKILL), 10].filter((c) => c !== 0));
  if ((lflag & IEXTEN) !== 0) for (const c of [cc(VWERASE), cc(VREPRINT)]) if (c !== 0) specials.add(c);
  const quote = (line: Buffer): Buffer => {
    if (!quoting) return line;
    const out: number[] = [];
    for (const c of line) {
      if (specials.has(c)) out.push(cc(VLNEXT));
      out.push(c);
    }
    return Buffer.from(out);
  };
  const parts: Buffer[] = [];
  const buf = Buffer.alloc(QUEUE_MAX + 1);
  if (canon) {
    // One complete line per read: its terminator is its last byte, or it ended with EOF.
    const terminators = new Set([10, cc(VEOL), cc(VEOL2)].filter((c) => c !== 0));
    for (let i = 0; i < QUEUE_MAX; i++) {
      const n = readOnce(fd, buf);
      if (n === undefined) break;
      const line = buf.subarray(0, n);
      const last = n > 0 ? line[n - 1] ?? -1 : -1;
      if (terminators.has(last)) parts.push(quote(line.subarray(0, n - 1)), Buffer.from([last]));
      else parts.push(quote(line), Buffer.from([cc(VEOF) || 4]));
    }
  }
  // What is left is raw input (or a line still being typed): read it with ICANON off for a moment.
  const raw = Buffer.from(t);
  raw.writeUInt32LE(lflag & ~ICANON, T_LFLAG);
  raw[T_CC + VMIN] = 1;
  raw[T_CC + VTIME] = 0;
  setTermios(fd, raw, what);
  try {
    for (let i = 0; i < QUEUE_MAX; i++) {
      const n = readOnce(fd, buf);
      if (n === undefined || n === 0) break;
      parts.push(quote(Buffer.from(buf.subarray(0, n))));
    }
  } finally {
    setTermios(fd, t, what);
  }
  return Buffer.concat(parts);
}

/** Type `data` into the slave's input: processing off, ICANON as it is; then the termios back. */
export function injectSlave(fd: number, data: Buffer, what: string): void {
  if (data.length === 0) return;
  const t = getTermios(fd);
  if (!t) throw new CriuTsError('ESYSCALL', `${what}: cannot read its termios`, {});
  const quiet = Buffer.from(t);
  quiet.writeUInt32LE(t.readUInt32LE(T_IFLAG) & ~INPUT_XLATE, T_IFLAG);
  quiet.writeUInt32LE(t.readUInt32LE(T_LFLAG) & ~(ECHO_BITS | ISIG), T_LFLAG);
  for (const i of [VERASE, VKILL, VWERASE, VREPRINT]) quiet[T_CC + i] = 0;
  setTermios(fd, quiet, what);
  try {
    inject(fd, data, what);
  } finally {
    setTermios(fd, t, what);
  }
}

interface Pair {
  index: number;
  /** our dup of the master (the task's open file description) */
  master: number;
  /** what was taken out of each queue, once taken: put back if the tasks run on */
  masterData?: Buffer;
  slaveData?: Buffer;
}

const PAIRS = stateKey<Map<number, Pair>>('tty:data-pairs');

/**
 * A master of the dump: its pair's queues are saved at the end of the dump.
 * `localFd` is the core's copy, valid only while the task's fds are dumped: we keep a dup.
 */
export function noteMaster(ctx: DumpContext, index: number, localFd: number): void {
  const pairs = ctx.memo(PAIRS, () => {
    const m = new Map<number, Pair>();
    ctx.atEnd(() => saveQueues(ctx, m));
    ctx.atExit((live) => {
      for (const p of m.values()) {
        if (live) putBack(p);
        closeQuiet(p.master);
      }
    });
    return m;
  });
  if (!pairs.has(index)) pairs.set(index, { index, master: dup(localFd) });
}

function saveQueues(ctx: DumpContext, pairs: Map<number, Pair>): void {
  const entries: { tty_id: number; data: Buffer }[] = [];
  for (const p of pairs.values()) {
    const what = `pty ${p.index}`;
    p.masterData = drainMaster(p.master);
    let slave = -1;
    try {
      slave = openSlave(p.master, what);
      p.slaveData = drainSlave(slave, what);
    } finally {
      if (slave >= 0) closeSync(slave);
    }
    if (p.slaveData.length > 0) entries.push({ tty_id: infoId(p.index, false), data: p.slaveData });
    if (p.masterData.length > 0) entries.push({ tty_id: infoId(p.index, true), data: p.masterData });
    if (p.slaveData.length + p.masterData.length > 0) {
      log.info(`${what}: ${p.slaveData.length} byte(s) queued for the slave, ${p.masterData.length} for the master`);
    }
  }
  if (entries.length > 0) ctx.saveImage('TTY_DATA', undefined, entries);
}

/** The tasks run on: their queues come back as they were. */
function putBack(p: Pair): void {
  const what = `pty ${p.index}`;
  try {
    if (p.masterData && p.masterData.length > 0) inject(p.master, p.masterData, what);
    if (p.slaveData && p.slaveData.length > 0) {
      const slave = openSlave(p.master, what);
      try {
        injectSlave(slave, p.slaveData, what);
      } finally {
        closeSync(slave);
      }
    }
  } catch (err) {
    log.error(`${what}: could not put its queued bytes back: ${(err as Error).message}`);
  }
}

/**
 * Restore: put the saved queues of pty `index` back, from our side (`master`:
 * our copy of its master), once
 * every task's files exist: the slave's through TIOCSTI, the master's by
 * writing them into the slave with output processing off (the master's
 * line discipline is raw: they land as they were).
 */
export function restoreQueues(ctx: RestoreContext, index: number, master: number): void {
  const what = `pty ${index}`;
  const entries = ctx.kindImage('TTY_DATA').entries;
  const forSlave = entries.filter((e) => e.tty_id === infoId(index, false)).map((e) => e.data);
  const forMaster = entries.filter((e) => e.tty_id === infoId(index, true)).map((e) => e.data);
  if (forSlave.length + forMaster.length === 0) return;
  const slave = openSlave(master, what);
  try {
    for (const d of forSlave) injectSlave(slave, d, what);
    for (const d of forMaster) writeRaw(slave, d, what);
  } finally {
    closeSync(slave);
  }
}

/** Write `data` out through the slave `fd` with OPOST off, so it reaches the master unchanged. */
function writeRaw(fd: number, data: Buffer, what: string): void {
  const t = getTermios(fd);
  if (!t) throw new CriuTsError('ESYSCALL', `${what}: cannot read its termios`, {});
  const raw = Buffer.from(t);
  raw.writeUInt32LE(t.readUInt32LE(T_OFLAG) & ~OPOST, T_OFLAG);
  setTermios(fd, raw, what);
  try {
    for (let off = 0; off < data.length;) {
      const n = write(fd, data.subarray(off));
      if (n <= 0) throw new CriuTsError('ERESTORE', `${what}: the slave took no more bytes (${off} of ${data.length})`, {});
      off += n;
    }
  } finally {
    setTermios(fd, t, what);
  }
}

/** Does the dump hold queued bytes for pty `index`? */
export function hasQueues(ctx: RestoreContext, index: number): boolean {
  return ctx.kindImage('TTY_DATA').entries.some((e) => e.tty_id === infoId(index, true) || e.tty_id === infoId(index, false));
}
