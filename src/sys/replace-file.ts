/**
 * Files written whole, never through a link (docs/security.md): replaced
 * under a private temporary name renamed in (ReplacingFile, replaceFile),
 * or, where nothing has the name yet, created and written in place
 * (createOrReplaceFile, for images); and directories held open while a dump
 * writes into them (holdDir).
 */
import { dirname, basename, resolve as resolvePath } from 'node:path';
import { sysTry } from './libc.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';
import { EEXIST } from './errno.js';
import { O, checkName, createAt, openDir, renameat, tempNameFor, unlinkat, writeAll } from './safe-fs.js';

/**
 * Directories held open for ReplacingFile (holdDir): resolved path -> its
 * O_PATH fd, opened at the first file made there (the dump makes its
 * images directory after it starts holding it). A dump of a 1000-thread
 * process writes 1,000 core images: one openat2 of the directory and its
 * close each, 2,000 syscalls of ours, where one fd serves them all. The
 * files still go where the path named the directory when the first was made.
 */
const heldDirs = new Map<string, { fd: number | undefined; holds: number }>();

function heldDirFd(dir: string): number | undefined {
  const h = heldDirs.get(resolvePath(dir));
  if (h === undefined) return undefined;
  h.fd ??= openDir(dir);
  return h.fd;
}

/**
 * Keep directory `dir` open for the files ReplacingFile (replaceFile) makes
 * in it until the returned release is called (holds nest).
 */
export function holdDir(dir: string): () => void {
  const key = resolvePath(dir);
  const h = heldDirs.get(key) ?? { fd: undefined, holds: 0 };
  h.holds++;
  heldDirs.set(key, h);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--h.holds > 0) return;
    heldDirs.delete(key);
    if (h.fd !== undefined) sysTry(NR.close, h.fd);
  };
}

/**
 * Write `data` as the file `path`: a name nothing has yet is created
 * (O_EXCL, never through a link) and written in place; a name that exists
 * (a planted link, an earlier dump's image) is replaced as replaceFile
 * does, never written through. A failed write removes the file it made.
 * For images, which nobody reads while the dump writes them: a 1000-thread
 * dump makes 1,000 core images, each a temporary name and a rename more
 * otherwise. Not for a file another process waits for (a pidfile), which
 * must never be seen half written.
 */
export function createOrReplaceFile(path: string, data: Buffer, mode = 0o600): void {
  const name = basename(path);
  checkName(name);
  const held = heldDirFd(dirname(path));
  const dirfd = held ?? openDir(dirname(path));
  try {
    let fd: number;
    try {
      fd = createAt(dirfd, name, mode);
    } catch (e) {
      if (e instanceof SyscallError && e.errno === EEXIST) {
        replaceFile(path, data, mode);
        return;
      }
      throw e;
    }
    try {
      writeAll(fd, data);
    } catch (e) {
      sysTry(NR.close, fd);
      try {
        unlinkat(dirfd, name);
      } catch {
        // nothing more we can do: the dump fails with the write's error
      }
      throw e;
    }
    sysTry(NR.close, fd);
  } finally {
    if (held === undefined) sysTry(NR.close, dirfd);
  }
}

/** Replace the file at `path` with `data` atomically (see ReplacingFile). */
export function replaceFile(path: string, data: Buffer, mode = 0o600): void {
  const f = new ReplacingFile(path, mode);
  try {
    writeAll(f.fd, data);
  } catch (e) {
    f.abort();
    throw e;
  }
  f.commit();
}

/**
 * A file that replaces whatever is at `path` only once it is complete:
 * written under a private temporary name created with O_EXCL, then renamed
 * over `path` (which replaces a planted link, never writes through it).
 */
export class ReplacingFile {
  readonly fd: number;
  private readonly dirfd: number;
  /** the directory's fd is held (holdDir) and stays open after us */
  private readonly heldDir: boolean;
  private readonly tmp: string;
  private readonly name: string;
  private done = false;

  constructor(readonly path: string, mode = 0o600, extra: number = O.WRONLY) {
    this.name = basename(path);
    checkName(this.name);
    const held = heldDirFd(dirname(path));
    this.heldDir = held !== undefined;
    this.dirfd = held ?? openDir(dirname(path));
    this.tmp = tempNameFor(this.name);
    try {
      this.fd = createAt(this.dirfd, this.tmp, mode, extra);
    } catch (e) {
      this.closeDir();
      throw e;
    }
  }

  private closeDir(): void {
    if (!this.heldDir) sysTry(NR.close, this.dirfd);
  }

  /** Put the file in place (rename over `path`) and close it; `keepOpen` leaves `fd` open for more writes. */
  commit(keepOpen = false): void {
    if (this.done) return;
    this.done = true;
    try {
      renameat(this.dirfd, this.tmp, this.dirfd, this.name);
    } catch (e) {
      this.cleanup();
      throw e;
    } finally {
      this.closeDir();
    }
    if (!keepOpen) sysTry(NR.close, this.fd);
  }

  /** Give up: the temporary file goes, `path` is untouched. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.cleanup();
    this.closeDir();
  }

  private cleanup(): void {
    sysTry(NR.close, this.fd);
    try {
      unlinkat(this.dirfd, this.tmp);
    } catch {
      // nothing more we can do; the name is private and unpredictable
    }
  }
}

