/**
 * /proc/sys: one sysctl a file, its value as text with a newline at the
 * end. The namespaced ones (net/*, kernel/hostname, kernel/domainname,
 * the SysV IPC limits) show the namespace of the thread that opens them,
 * so a caller that has moved this thread into a task's namespace reads
 * that namespace's.
 */
import { readFileSync } from 'node:fs';
import { CriuTsError } from '../errors.js';

/**
 * The text of sysctl `path` ("kernel/hostname", "net/ipv4/ip_forward"),
 * its last newline off; undefined when this kernel lacks it or will not
 * tell (ENOENT; EIO: net's stable_secret unset; EACCES/EPERM). EPROC on
 * any other error.
 */
export function readSysctl(path: string): string | undefined {
  const file = `/proc/sys/${path}`;
  try {
    return readFileSync(file, 'utf8').replace(/\n$/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EIO' || code === 'EACCES' || code === 'EPERM') return undefined;
    throw new CriuTsError('EPROC', `cannot read sysctl ${path}: ${(e as Error).message}`, { file, errno: code }, e);
  }
}

/** A sysctl holding one integer; undefined as readSysctl says, or when it holds something else. */
export function readSysctlInt(path: string): number | undefined {
  const text = readSysctl(path)?.trim();
  const v = text === undefined || !/^-?\d+$/.test(text) ? NaN : Number(text);
  return Number.isSafeInteger(v) ? v : undefined;
}
