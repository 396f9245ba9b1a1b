/**
 * The lazy-pages daemon's reads of pages images, each checked against the
 * dump's criu-ts-checksums before a byte is served: a lazy restore leaves
 * the pages of lazy VMAs unchecked (restore/images.ts), and the daemon
 * serves them long after the restore began, from files that could have
 * changed since.
 *
 * A pages image with block digests (block_size, blocks): each read covers
 * whole blocks, which are hashed and compared before the bytes asked for
 * are handed out, so what is served is what was checked. A file listed
 * with one digest only (an older criu-ts dump) is checked whole on first
 * use. A directory without criu-ts-checksums (a CRIU dump, a page
 * server's files) or a file it does not list is read unchecked, as a
 * plain restore would read it. Parent images of a pre-dump chain are
 * checked against their own directory's checksums.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { CriuTsError } from '../errors.js';
import { CHECKSUMS_IMAGE, blockLayout, checkBlocks, loadImageIfAny, verifyChecksums } from '../images/index.js';
import type { CriuTsChecksumEntry } from '../images/messages.js';

export class CheckedPages {
  private readonly sums = new Map<string, Map<string, CriuTsChecksumEntry>>();
  /** files whose size was checked (and, without blocks, whose whole digest) */
  private readonly checked = new Set<string>();
  private readonly fds = new Map<string, number>();
  private scratch = Buffer.alloc(0);
  /** bytes hashed to check what was served (blocks overlap between reads at their edges) */
  hashedBytes = 0;

  constructor(private readonly skip: boolean) {}

  /** Read `len` bytes of `path` at `off` into `out` at `outOff`; EIMAGE when they are not what the dump wrote. */
  read(path: string, off: bigint, len: number, out: Buffer, outOff: number): void {
    const e = this.skip ? undefined : this.entryFor(path);
    const fd = this.fdOf(path);
    if (e !== undefined && !this.checked.has(path)) {
      if (e.blocks === undefined) {
        verifyChecksums(dirname(path), [e]);
        this.hashedBytes += Number(e.size);
      } else if (BigInt(fstatSync(fd).size) !== BigInt(e.size)) {
        throw new CriuTsError('EIMAGE', `${path}: size ${fstatSync(fd).size}, the dump wrote ${e.size} (${CHECKSUMS_IMAGE})`, { file: path, field: 'size' });
      }
      this.checked.add(path);
    }
    if (e?.blocks === undefined) {
      readAll(fd, path, out, outOff, len, off);
      return;
    }
    const bs = BigInt(blockLayout(path, e).size);
    const first = off / bs;
    const from = first * bs;
    const endWant = off + BigInt(len);
    if (endWant > BigInt(e.size)) throw new CriuTsError('EIMAGE', `${path}: ends before the pagemap says (offset ${endWant})`, { path });
    const roundUp = ((endWant + bs - 1n) / bs) * bs;
    const to = roundUp < BigInt(e.size) ? roundUp : BigInt(e.size);
    const n = Number(to - from);
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafe(n);
    readAll(fd, path, this.scratch, 0, n, from);
    checkBlocks(path, e, Number(first), this.scratch.subarray(0, n));
    this.hashedBytes += n;
    this.scratch.copy(out, outOff, Number(off - from), Number(off - from) + len);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  private entryFor(path: string): CriuTsChecksumEntry | undefined {
    const dir = dirname(path);
    let m = this.sums.get(dir);
    if (m === undefined) {
      m = new Map((loadImageIfAny(dir, 'CRIU_TS_CHECKSUMS')?.entries ?? []).map((e) => [e.name, e]));
      this.sums.set(dir, m);
    }
    return m.get(basename(path));
  }

  private fdOf(path: string): number {
    let fd = this.fds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'r');
      this.fds.set(path, fd);
    }
    return fd;
  }
}

function readAll(fd: number, path: string, out: Buffer, outOff: number, len: number, off: bigint): void {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, out, outOff + got, len - got, off + BigInt(got));
    if (n === 0) throw new CriuTsError('EIMAGE', `${path}: ends before the pagemap says (offset ${off + BigInt(got)})`, { path });
    got += n;
  }
}
