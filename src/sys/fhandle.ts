/**
 * File handles (name_to_handle_at / open_by_handle_at): how inotify and
 * fanotify name the inodes they watch in /proc/PID/fdinfo. Opening a handle
 * needs an fd on the same filesystem (the mount fd) and CAP_DAC_READ_SEARCH.
 */
import { sys, addr } from './libc.js';
import { NR } from './nr.js';
import { O_PATH } from './fcntl.js';

/** MAX_HANDLE_SZ: the largest f_handle the kernel hands out. */
export const MAX_HANDLE_BYTES = 128;

/** open_by_handle_at(mountFd, {bytes, type, handle}, flags) in our process. */
export function openByHandleAt(mountFd: number, type: number, handle: Buffer, flags = O_PATH): number {
  const fh = Buffer.alloc(8 + Math.max(handle.length, 1));
  fh.writeUInt32LE(handle.length, 0);
  fh.writeInt32LE(type, 4);
  handle.copy(fh, 8);
  return sys('open_by_handle_at', NR.open_by_handle_at, undefined, mountFd, addr(fh), flags);
}
