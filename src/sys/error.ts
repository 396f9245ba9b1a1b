import { CriuTsError } from '../errors.js';
import { errnoName } from './errno.js';

/** A failed syscall: always carries the syscall name, errno (number and name) and the pid it concerned. */
export class SyscallError extends CriuTsError {
  readonly syscall: string;
  readonly errno: number;
  readonly pid: number | undefined;

  constructor(syscall: string, errno: number, pid?: number, detail?: string) {
    const name = errnoName(errno);
    const who = pid === undefined ? '' : ` (pid ${pid})`;
    super('ESYSCALL', `${syscall}${detail ? ` ${detail}` : ''}${who}: ${name}`, {
      syscall,
      errno,
      errnoName: name,
      ...(pid === undefined ? {} : { pid }),
    });
    this.name = 'SyscallError';
    this.syscall = syscall;
    this.errno = errno;
    this.pid = pid;
  }
}

export function isSyscallError(e: unknown, errno?: number): e is SyscallError {
  return e instanceof SyscallError && (errno === undefined || e.errno === errno);
}
