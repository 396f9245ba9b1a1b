/**
 * A whole file read on one of koffi's worker threads (libuv's pool), for
 * files whose reading is the kernel's work rather than a copy: /proc/PID/
 * smaps walks the task's page tables as it is read (8 ms for a 1 GiB task
 * on the benchmark VM), and refuses splice, so neither sendfile nor one
 * big read gets it in one call. One libc call on another thread reads it
 * all while ours goes on with other work: getdelim(3) with a NUL
 * delimiter (a /proc text file has none) over a stdio stream.
 *
 * Why getdelim and not fread: the size of each read(2) matters for a seq
 * file. The kernel fills its seq buffer (4 KiB) with whole records until
 * the reader's request is met; a record that does not fit any more is
 * thrown away and made again at the next read(2). An smaps record is made
 * by walking its VMA's page tables, so a big VMA whose record falls on
 * that edge is walked twice: 16.5 ms instead of 8.3 for the 1 GiB
 * benchmark task (proc/maps.ts SEQ_READ_BYTES). Reads no bigger than half
 * the seq buffer never leave a record of 2 KiB or less on the edge. fread
 * reads straight into the caller's buffer with one big read(2) whatever
 * the stream's buffer; getdelim goes through the stream's buffer, whose
 * size setvbuf sets.
 */
import { libcFunction } from './libc.js';
import { closeSync } from 'node:fs';

const IOFBF = 0;

/**
 * Read `fd` (whose ownership passes here: it is closed once read) from its
 * current offset to its end, at most `cap` bytes, `readBytes` per read(2).
 * Resolves with the bytes, or undefined when the file holds `cap` bytes or
 * more, or the read failed (the caller reads it again its usual way, which
 * reports the error).
 */
export function readAllAsync(fd: number, cap: number, readBytes = 4096): Promise<Buffer | undefined> {
  const fp: unknown = libcFunction('void *fdopen(int fd, const char *mode)')(fd, 'r');
  if (fp === null) {
    closeSync(fd);
    return Promise.resolve(undefined);
  }
  let line = 0n;
  const fclose = (): void => {
    libcFunction('int fclose(void *fp)')(fp); // closes fd
    if (line !== 0n) libcFunction('void free(uint64_t p)')(line);
    line = 0n;
  };
  if ((libcFunction('int setvbuf(void *fp, void *buf, int mode, size_t size)')(fp, null, IOFBF, readBytes) as number) !== 0) {
    fclose();
    return Promise.resolve(undefined);
  }
  // getdelim's line buffer, malloc'ed at `cap` so that it is not grown
  // below it (getdelim reallocs it when the file is longer: freed all the same).
  line = BigInt(libcFunction('uint64_t malloc(size_t n)')(cap) as number | bigint);
  if (line === 0n) {
    fclose();
    return Promise.resolve(undefined);
  }
  // Held by this closure until the worker is done with them.
  const linePtr = Buffer.alloc(8);
  linePtr.writeBigUInt64LE(line);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(cap));
  const getdelim = libcFunction('intptr_t getdelim(void *lineptr, void *n, int delim, void *fp)') as unknown as { async: (...a: unknown[]) => void };
  return new Promise((resolve) => {
    const done = (n: number | bigint | undefined): void => {
      line = linePtr.readBigUInt64LE(0); // realloc'ed if the file was longer than cap
      let out: Buffer | undefined;
      try {
        const got = n === undefined ? -2 : Number(n);
        const bad = (libcFunction('int ferror(void *fp)')(fp) as number) !== 0;
        if (got === -1 && !bad) out = Buffer.alloc(0); // an empty file: end of file at once
        else if (got >= 0 && got < cap && !bad) {
          out = Buffer.allocUnsafe(got);
          libcFunction('void *memcpy(void *dst, uint64_t src, size_t n)')(out, line, got);
        }
      } finally {
        fclose();
      }
      resolve(out);
    };
    try {
      getdelim.async(linePtr, size, 0, fp, (err: unknown, n: number | bigint) => done(err ? undefined : n));
    } catch {
      done(undefined);
    }
  });
}
