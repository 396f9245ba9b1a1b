/** The error of a syscall run inside a target that returned -errno. */
import { errnoName } from '../sys/index.js';
import { CriuTsError } from '../errors.js';

export class RemoteSyscallError extends CriuTsError {
  constructor(readonly syscall: string, readonly errno: number, readonly pid: number) {
    super('EINFECT', `${syscall} in task ${pid}: ${errnoName(errno)}`, { syscall, errno, errnoName: errnoName(errno), pid });
    this.name = 'RemoteSyscallError';
  }
}
