/**
 * Random bytes from the kernel's CSPRNG through getrandom(2), where
 * criu-ts used node:crypto's randomBytes and randomUUID: loading node:crypto
 * evaluates about 25 of Node's internal modules (streams, keys, ciphers),
 * some 10 ms of CPU in every CLI run that touched it (a dump's run id, a
 * temporary file's name), for a few random bytes (docs/performance.md,
 * "Start-up, session 13").
 */
import { addr, sys } from './libc.js';
import { NR } from './nr.js';

/** `n` bytes from getrandom(2) (blocking only until the pool is first seeded, as randomBytes does). */
export function randomBytesSync(n: number): Buffer {
  const buf = Buffer.alloc(n);
  let got = 0;
  // Reads of more than 256 bytes may come back short (a signal); each part is random.
  while (got < n) got += sys('getrandom', NR.getrandom, undefined, addr(buf) + BigInt(got), n - got, 0);
  return buf;
}

/** An RFC 4122 version 4 UUID, as crypto.randomUUID() makes one. */
export function randomUuid(): string {
  const b = randomBytesSync(16);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
