/**
 * The contract between the core (src/dump, src/restore) and the resource
 * kinds. A file kind recognises one kind of open file, turns it into a
 * CRIU file_entry at dump, and re-creates it inside a restored task.
 */
import type { Stats } from 'node:fs';
import type { FdInfo } from '../proc/index.js';
import type { FileEntry, FdinfoEntry } from '../images/messages.js';
import type { Tracee } from '../infect/tracee.js';

/** What the core learned about one fd before asking the kinds. */
export interface FdProbe {
  pid: number;
  fd: number;
  /** readlink /proc/PID/fd/N ("/path", "pipe:[123]", "socket:[45]", "anon_inode:[eventfd]", ...) */
  link: string;
  fdinfo: FdInfo;
  /** fstat of our own copy of the fd (pidfd_getfd) */
  stat: Stats;
  /** our copy of the fd, valid during dump; closed by the core */
  localFd: number;
}

export interface DumpFilesContext {
  /** register an extra file entry (e.g. the REG entry behind a FIFO); returns its id */
  addFile(make: (id: number) => FileEntry): number;
  /** options that change what may be dumped */
  opts: { shellJob: boolean; extUnixSk: boolean; fileLocks: boolean; ghostLimit: number };
}

/** Restore-side view of a task: enough to open files inside it. */
export interface RestoreTaskHandle {
  pid: number;
  tracee: Tracee;
  /** copy a NUL-terminated string into the task's scratch area; returns its address */
  putString(s: string): bigint;
  /** copy bytes into scratch; returns the address */
  putBytes(b: Buffer): bigint;
  /** run a syscall in the task (throws on -errno) */
  syscall(name: string, nr: number, ...args: (number | bigint)[]): bigint;
}

export interface RestoreFilesContext {
  /** every file entry of the dump by id */
  fileById(id: number): FileEntry | undefined;
  imagesDir: string;
  opts: { shellJob: boolean };
}

export interface FileKind {
  /** short name for logs */
  readonly name: string;
  /** CRIU fd_types name this kind writes ("REG", "PIPE", ...) */
  readonly type: FileEntry['type'];
  detect(p: FdProbe): boolean;
  /** describe the open file as a file_entry with this id */
  dump(p: FdProbe, id: number, ctx: DumpFilesContext): FileEntry;
  /**
   * Re-create the open file inside the task; returns the fd number it got
   * there (the core moves it to the right number and sets FD_CLOEXEC).
   */
  restore(t: RestoreTaskHandle, e: FileEntry, fdi: FdinfoEntry, ctx: RestoreFilesContext): number;
}
