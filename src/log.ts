/**
 * Logging with CRIU's levels: -v0 silent, -v1 errors, -v2 warnings (CRIU's
 * default), -v3 info, -v4 debug. Each module gets a prefixed logger; output
 * goes to stderr or to the file given with -o. Lines carry elapsed seconds
 * like CRIU's "(00.012345)" stamps so logs can be compared side by side.
 */
import { openSync, closeSync, writeSync } from 'node:fs';
import { ReplacingFile } from './sys/replace-file.js';

export const LOG_ERROR = 1;
export const LOG_WARN = 2;
export const LOG_INFO = 3;
export const LOG_DEBUG = 4;

interface LogState {
  level: number;
  fd: number; // 2 = stderr
  path: string | undefined;
  start: bigint;
}

const state: LogState = { level: LOG_WARN, fd: 2, path: undefined, start: process.hrtime.bigint() };

export function setLogLevel(level: number): void {
  state.level = Math.max(0, Math.min(4, level));
}

export function logLevel(): number {
  return state.level;
}

/**
 * Send log lines to a file instead of stderr. A new file, like CRIU's
 * O_TRUNC: created under a private name and renamed in, so a link planted
 * at the log's name (in a directory a user owns) is replaced, never
 * written through. Devices (`-o -` is /dev/stdout) are opened as they are.
 */
export function setLogFile(path: string | undefined): void {
  if (state.fd !== 2) closeSync(state.fd);
  state.path = undefined;
  state.fd = 2;
  if (path === undefined) return;
  if (path.startsWith('/dev/')) {
    state.fd = openSync(path, 'a', 0o600);
  } else {
    const f = new ReplacingFile(path, 0o600, 0o2001 /* O_WRONLY|O_APPEND */);
    f.commit(true);
    state.fd = f.fd;
  }
  state.path = path;
}

/** The log file's fd (for scripts whose output goes to the log), or undefined when logging to stderr. */
export function logFileFd(): number | undefined {
  return state.fd === 2 ? undefined : state.fd;
}

export function resetLogClock(): void {
  state.start = process.hrtime.bigint();
}

function stamp(): string {
  const us = Number((process.hrtime.bigint() - state.start) / 1000n);
  const s = Math.floor(us / 1e6);
  return `(${String(s).padStart(2, '0')}.${String(us % 1e6).padStart(6, '0')})`;
}

/**
 * CRIU_TS_LOG_MEM=1: each log line also says where the memory is (RSS,
 * V8 heap used/committed, external, ArrayBuffers, MiB): how the peak-RSS
 * work (docs/performance.md) finds the phase that grows it.
 */
const logMem = process.env['CRIU_TS_LOG_MEM'] === '1';

function memStamp(): string {
  if (!logMem) return '';
  const m = process.memoryUsage();
  const mib = (n: number): string => (n / 1048576).toFixed(1);
  return ` [rss ${mib(m.rss)} heap ${mib(m.heapUsed)}/${mib(m.heapTotal)} ext ${mib(m.external)} ab ${mib(m.arrayBuffers)}]`;
}

function emit(level: number, prefix: string, msg: string): void {
  if (level > state.level) return;
  const tag = level === LOG_ERROR ? 'Error ' : level === LOG_WARN ? 'Warn  ' : '';
  const line = `${stamp()}${memStamp()} ${tag}${prefix}: ${msg}\n`;
  try {
    if (state.fd === 2) process.stderr.write(line);
    else writeSync(state.fd, line);
  } catch {
    // A log that cannot be written must never break a dump or a restore.
  }
}

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  enabled(level: number): boolean;
}

export function logger(prefix: string): Logger {
  return {
    error: (m) => emit(LOG_ERROR, prefix, m),
    warn: (m) => emit(LOG_WARN, prefix, m),
    info: (m) => emit(LOG_INFO, prefix, m),
    debug: (m) => emit(LOG_DEBUG, prefix, m),
    enabled: (l) => l <= state.level,
  };
}

/** For tests and tools that want to append raw lines to the current log file. */
export function appendRaw(line: string): void {
  if (state.fd !== 2) writeSync(state.fd, line);
}
