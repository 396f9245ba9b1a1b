/**
 * Fds our own runner inherited without O_CLOEXEC, closed: a developer's
 * shell or a CI agent may leak a pipe into us, and every process the tests
 * start (and then dump) would inherit it, a file that belongs to neither
 * test nor target. Node's own descriptors are all close-on-exec, so they
 * stay. Used by test/run.mjs (before it starts the test files) and by every
 * test file's harness (a file may be run without run.mjs). Imports nothing
 * but node:fs, so run.mjs can load it alone.
 */
import { closeSync, readdirSync, readFileSync } from 'node:fs';

export function closeInheritedFds(): void {
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    try {
      const flags = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & 0o2000000) === 0) closeSync(fd);
    } catch {
      // the readdir's own fd, already gone
    }
  }
}
