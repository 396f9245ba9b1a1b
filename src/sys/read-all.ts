/**
 * A whole file read on one of koffi's worker threads (libuv's pool), for
 * files whose reading is the kernel's work rather than a copy: /proc/PID/
 * smaps walks the task's page tables as it is read (8 ms for a 1 GiB task
 * on the benchmark VM), 4 KiB per read(2) (a seq file), and refuses
 * splice, so neither sendfile nor one big read gets it in one call. stdio's
 * fread loops over read(2) until its count or end of file: one call, on
 * another thread, while ours goes on with other work.
 */
import { libcFunction } from './libc.js';
import { closeSync } from 'node:fs';

/**
 * Read `fd` (whose ownership passes here: it is closed once read) from its
 * current offset to its end, at most `cap` bytes. Resolves with the bytes,
 * or undefined when the file holds `cap` bytes or more, or the read failed
 * (the caller reads it again its usual way, which reports the error). The
 * buffer is the caller's only once this settles.
 */
export function readAllAsync(fd: number, cap: number): Promise<Buffer | undefined> {
  const fdopen = libcFunction('void *fdopen(int fd, const char *mode)');
  const fp: unknown = fdopen(fd, 'r');
  if (fp === null) {
    closeSync(fd);
    return Promise.resolve(undefined);
  }
  // Held by this closure until the worker is done with it (no view of it escapes before).
  const buf = Buffer.allocUnsafeSlow(cap);
  const fread = libcFunction('size_t fread(void *buf, size_t size, size_t n, void *fp)') as unknown as { async: (...a: unknown[]) => void };
  return new Promise((resolve) => {
    const done = (n: number | bigint | undefined): void => {
      const bad = (libcFunction('int ferror(void *fp)')(fp) as number) !== 0;
      libcFunction('int fclose(void *fp)')(fp); // closes fd
      const got = n === undefined ? -1 : Number(n);
      resolve(bad || got < 0 || got >= cap ? undefined : buf.subarray(0, got));
    };
    try {
      fread.async(buf, 1, cap, fp, (err: unknown, n: number | bigint) => done(err ? undefined : n));
    } catch {
      done(undefined);
    }
  });
}
