/**
 * The lazy-pages daemon's source of pages: each pages image mapped
 * read-only into our process (sys/file-map.ts), so that UFFDIO_COPY copies
 * straight from the page cache into the task, with no read into a buffer
 * of ours first. Every byte handed out is checked against the dump's
 * criu-ts-checksums before it is: a lazy restore leaves the pages of lazy
 * VMAs unchecked (restore/images.ts), and the daemon serves them long
 * after the restore began, from files that could have changed since.
 *
 * A pages image with block digests (block_size, blocks): the first time
 * any byte of a block is asked for, the whole block is hashed from the
 * mapping and compared; each block is hashed once, whether a fault or a
 * push reaches it first. A file listed with one digest only (an older
 * criu-ts dump) is checked whole on first use. A directory without
 * criu-ts-checksums (a CRIU dump, a page server's files) or a file it does
 * not list is served unchecked, as a plain restore would read it. Parent
 * images of a pre-dump chain are checked against their own directory's
 * checksums.
 *
 * What is checked is the mapping the copy reads, not a private copy: a
 * file rewritten after its block was checked is not seen, as a plain
 * restore does not see one rewritten between its check and its preadv. A
 * file cut short after it was mapped faults (SIGBUS) this process; the
 * watchdog then kills the tasks (lazy-watchdog.ts), none runs on with
 * pages the dump did not write.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { CriuTsError } from '../errors.js';
import { CHECKSUMS_IMAGE, blockLayout, checkBlocks, loadImageIfAny, refuseFreed, verifyChecksums } from '../images/index.js';
import type { CriuTsChecksumEntry } from '../images/messages.js';
import { mapFileReadOnly, unmapFile, type FileMap } from '../sys/index.js';

interface Source {
  fd: number;
  map: FileMap | undefined;
  size: number;
  /** its checksums entry, when it has one */
  e: CriuTsChecksumEntry | undefined;
  /** the file's checksums entry when it has block digests */
  blocks: { e: CriuTsChecksumEntry; size: number; done: Uint8Array } | undefined;
}

export class CheckedPages {
  private readonly sums = new Map<string, Map<string, CriuTsChecksumEntry>>();
  private readonly files = new Map<string, Source>();
  /** bytes of pages images hashed to check what was served (each block once) */
  hashedBytes = 0;

  constructor(private readonly skip: boolean) {}

  /**
   * The address, in our memory, of `len` bytes of `path` at `off`, once
   * every block they span is checked. EIMAGE when the file is shorter than
   * the pagemap says or its bytes are not what the dump wrote.
   */
  source(path: string, off: bigint, len: number): bigint {
    const f = this.open(path);
    const end = off + BigInt(len);
    if (end > BigInt(f.size) || f.map === undefined) throw new CriuTsError('EIMAGE', `${path}: ends before the pagemap says (offset ${end})`, { path });
    // Bytes a dedup of a later dump freed are holes now: refused, never served as zeros.
    if (f.e?.freed !== undefined) refuseFreed(path, f.e, [{ start: off, end }]);
    const b = f.blocks;
    if (b !== undefined) {
      const last = Math.floor((Number(end) - 1) / b.size);
      for (let i = Math.floor(Number(off) / b.size); i <= last; i++) {
        if (b.done[i] === 1) continue;
        // A run of blocks not checked yet: hashed in one pass over the mapping.
        let j = i;
        while (j + 1 <= last && b.done[j + 1] === 0) j++;
        const from = i * b.size;
        const to = Math.min((j + 1) * b.size, f.size);
        checkBlocks(path, b.e, i, f.map.bytes.subarray(from, to));
        b.done.fill(1, i, j + 1);
        this.hashedBytes += to - from;
        i = j;
      }
    }
    return f.map.addr + off;
  }

  close(): void {
    for (const f of this.files.values()) {
      if (f.map) unmapFile(f.map);
      closeSync(f.fd);
    }
    this.files.clear();
  }

  private open(path: string): Source {
    let f = this.files.get(path);
    if (f !== undefined) return f;
    const e = this.skip ? undefined : this.entryFor(path);
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
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
      f = { fd, map: size > 0 ? mapFileReadOnly(fd, size) : undefined, size, e, blocks };
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.files.set(path, f);
    return f;
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
}
