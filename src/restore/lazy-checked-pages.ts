/**
 * The lazy-pages daemon's source of pages: each pages image read (pread)
 * into a buffer of the caller's, and every byte handed out checked against
 * the dump's criu-ts-checksums before it is: a lazy restore leaves the
 * pages of lazy VMAs unchecked (restore/images.ts), and the daemon serves
 * them long after the restore began, from files that could have changed
 * since.
 *
 * A pages image with block digests (block_size, blocks): the first time
 * any byte of a block is asked for, the whole block is read into the
 * caller's buffer with the bytes asked for and hashed there; each block is
 * hashed once, whether a fault or a push reaches it first. The buffers of
 * the background push lie in vmh256's own memory (lazy-push.ts), so the
 * hash reads them where they are and UFFDIO_COPY copies from them: one
 * read of the file, one hash, one copy into the task. A file listed with
 * one digest only (an older criu-ts dump) is checked whole on first use. A
 * directory without criu-ts-checksums (a CRIU dump, a page server's files)
 * or a file it does not list is served unchecked, as a plain restore would
 * read it. Parent images of a pre-dump chain are checked against their own
 * directory's checksums.
 *
 * What a block's check saw is what is copied where the block is read for
 * the copy; a block checked earlier (by a fault) and read again later is
 * not hashed again, as a plain restore does not see a file rewritten
 * between its check and its preadv. A file cut short is a short read:
 * EIMAGE, the daemon fails and its watchdog kills the tasks
 * (lazy-watchdog.ts), none runs on with pages the dump did not write.
 * (The files were mapped before session 11: the hash then copied each
 * block out of the mapping into vmh256's memory anyway, and the mapping's
 * page faults and its munmap at the end cost more than the read.)
 */
import { closeSync, fstatSync, openSync, readSync, statSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CriuTsError } from '../errors.js';
import { CHECKSUMS_IMAGE, blockLayout, checkBlocks, imageIdOf, loadImageIfAny, refuseFreed, verifyChecksums } from '../images/index.js';
import type { CriuTsChecksumEntry } from '../images/messages.js';
import { PAGE_SIZE } from '../sys/index.js';

interface Source {
  fd: number;
  size: number;
  /** its checksums entry, when it has one */
  e: CriuTsChecksumEntry | undefined;
  /** the file's checksums entry when it has block digests */
  blocks: { e: CriuTsChecksumEntry; size: number; done: Uint8Array } | undefined;
}

/** Where the bytes asked for are in the caller's buffer, and how many of them it got. */
export interface Read { at: number; len: number }

export class CheckedPages {
  private readonly sums = new Map<string, Map<string, CriuTsChecksumEntry>>();
  private readonly files = new Map<string, Source>();
  /** what each file read or opened was (stampOf), by path: prepare() drops everything when one changed */
  private readonly stamps = new Map<string, string>();
  /** bytes of pages images hashed to check what was served (each block once) */
  hashedBytes = 0;

  constructor(private readonly skip: boolean) {}

  /**
   * Read up to `maxLen` bytes (a multiple of the page size) of `path` from
   * `off` into `into`, every block they span checked: fewer when the
   * blocks around them would not fit in `into` (at least a page when it
   * holds two blocks). EIMAGE when the file is shorter than the pagemap
   * says or its bytes are not what the dump wrote.
   */
  read(path: string, off: bigint, maxLen: number, into: Buffer): Read {
    const f = this.open(path);
    const o = Number(off);
    const b = f.blocks;
    let len = maxLen;
    if (b !== undefined && b.size * 2 <= into.length) {
      // Whole blocks in, the bytes wanted among them: those not checked yet are hashed where they were read.
      const head = o % b.size;
      len = Math.min(maxLen, Math.floor(into.length / b.size) * b.size - head);
      len -= len % PAGE_SIZE;
      this.bounds(path, f, o, len);
      const first = Math.floor(o / b.size);
      const last = Math.floor((o + len - 1) / b.size);
      if (b.done.subarray(first, last + 1).includes(0)) {
        const from = first * b.size;
        const to = Math.min((last + 1) * b.size, f.size);
        readAll(path, f.fd, into, to - from, from);
        for (let i = first; i <= last; i++) {
          if (b.done[i] === 1) continue;
          let j = i;
          while (j + 1 <= last && b.done[j + 1] === 0) j++;
          const s = (i - first) * b.size;
          const n = Math.min((j + 1) * b.size, f.size) - i * b.size;
          checkBlocks(path, b.e, i, into.subarray(s, s + n));
          b.done.fill(1, i, j + 1);
          this.hashedBytes += n;
          i = j;
        }
        return { at: head, len };
      }
    } else {
      len = Math.min(maxLen, into.length - (into.length % PAGE_SIZE));
      this.bounds(path, f, o, len);
      // Blocks bigger than half the buffer: checked first, block by block, then the bytes read again.
      if (b !== undefined) this.checkApart(path, f, b, o, len, into);
    }
    readAll(path, f.fd, into, len, o);
    return { at: 0, len };
  }

  /**
   * Open ahead the pages images of `dir` that have block digests (their
   * checksums entries decoded, each file's list of digests checked against
   * its digest): what the first fault or push would otherwise do just as
   * the tasks start to run (8-19 ms of our CPU for a 1 GiB dump,
   * docs/performance.md, session 15). Called when the daemon starts, and
   * again when its restore connects (the images are whole then: the
   * restore checked them first): what was opened or read before is kept
   * only if neither criu-ts-checksums nor any file opened changed since
   * (the same inode under its name, same size, mtime and ctime); else all
   * of it is dropped and read again, so what is served is checked against
   * the checksums as they are at the restore, as before.
   *
   * Best effort: a file that cannot be opened or whose digests do not fit
   * is left as it was, and the read that needs it fails as it would have.
   * No block is read or hashed here: each is still checked where it is read
   * for its copy. A file with one digest for the whole of it (an older
   * dump) is left to its first use, which hashes it whole.
   */
  prepare(dir: string): void {
    if (this.skip) return;
    if (!this.unchanged()) this.close();
    let names: string[];
    try {
      names = [...this.entries(dir).values()].filter((e) => e.blocks !== undefined).map((e) => e.name);
    } catch {
      return;
    }
    for (const name of names) {
      if (imageIdOf('PAGES', name) === undefined) continue;
      try {
        this.open(join(dir, name));
      } catch {
        // left for its first read, which fails as it would have
      }
    }
  }

  /** Every checksums file read and every file opened is still what its name holds, unchanged. */
  private unchanged(): boolean {
    for (const [path, was] of this.stamps) {
      try {
        if (stampOf(statSync(path, { bigint: true })) !== was) return false;
      } catch {
        return false;
      }
    }
    return true;
  }

  close(): void {
    for (const f of this.files.values()) closeSync(f.fd);
    this.files.clear();
    this.sums.clear();
    this.stamps.clear();
  }

  private bounds(path: string, f: Source, o: number, len: number): void {
    if (o + len > f.size) throw new CriuTsError('EIMAGE', `${path}: ends before the pagemap says (offset ${o + len})`, { path });
    // Bytes a dedup of a later dump freed are holes now: refused, never served as zeros.
    if (f.e?.freed !== undefined) refuseFreed(path, f.e, [{ start: BigInt(o), end: BigInt(o + len) }]);
  }

  private checkApart(path: string, f: Source, b: NonNullable<Source['blocks']>, o: number, len: number, into: Buffer): void {
    for (let i = Math.floor(o / b.size); i <= Math.floor((o + len - 1) / b.size); i++) {
      if (b.done[i] === 1) continue;
      const end = Math.min((i + 1) * b.size, f.size);
      const parts: Buffer[] = [];
      for (let at = i * b.size; at < end; at += into.length) {
        const n = Math.min(into.length, end - at);
        readAll(path, f.fd, into, n, at);
        parts.push(Buffer.from(into.subarray(0, n)));
      }
      checkBlocks(path, b.e, i, Buffer.concat(parts));
      b.done[i] = 1;
      this.hashedBytes += end - i * b.size;
    }
  }

  private open(path: string): Source {
    let f = this.files.get(path);
    if (f !== undefined) return f;
    const e = this.skip ? undefined : this.entryFor(path);
    const fd = openSync(path, 'r');
    try {
      const st = fstatSync(fd, { bigint: true });
      const size = Number(st.size);
      let blocks: Source['blocks'];
      if (e !== undefined && e.blocks === undefined) {
        // One digest for the whole file (an older criu-ts dump): checked whole, now.
        verifyChecksums(dirname(path), [e], undefined, () => []);
        this.hashedBytes += Number(e.size);
      } else if (e !== undefined) {
        if (BigInt(size) !== BigInt(e.size)) throw new CriuTsError('EIMAGE', `${path}: size ${size}, the dump wrote ${e.size} (${CHECKSUMS_IMAGE})`, { file: path, field: 'size' });
        const layout = blockLayout(path, e);
        blocks = { e, size: layout.size, done: new Uint8Array(layout.count) };
      }
      f = { fd, size, e, blocks };
      this.stamps.set(path, stampOf(st));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.files.set(path, f);
    return f;
  }

  private entryFor(path: string): CriuTsChecksumEntry | undefined {
    return this.entries(dirname(path)).get(basename(path));
  }

  private entries(dir: string): Map<string, CriuTsChecksumEntry> {
    let m = this.sums.get(dir);
    if (m === undefined) {
      // Its stamp taken before it is read: a change while it is read shows at the next prepare().
      const path = join(dir, CHECKSUMS_IMAGE);
      let st: BigIntStats | undefined;
      try {
        st = statSync(path, { bigint: true });
      } catch {
        // none (a CRIU dump): nothing is checked, as before
      }
      m = new Map((loadImageIfAny(dir, 'CRIU_TS_CHECKSUMS')?.entries ?? []).map((e) => [e.name, e]));
      this.stamps.set(path, st === undefined ? 'none' : stampOf(st));
      this.sums.set(dir, m);
    }
    return m;
  }
}

/** What identifies a file's content without reading it: a rewrite in place changes mtime and ctime, a rename over it the inode. */
function stampOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** `n` bytes of `fd` at `pos` into the start of `into`; a short file is EIMAGE. */
function readAll(path: string, fd: number, into: Buffer, n: number, pos: number): void {
  for (let got = 0; got < n;) {
    const r = readSync(fd, into, got, n - got, pos + got);
    if (r === 0) throw new CriuTsError('EIMAGE', `${path}: ends before the pagemap says (offset ${pos + got})`, { path });
    got += r;
  }
}
