/**
 * Streams page contents into pages-<id>.img and collects the matching
 * pagemap entries. Pages are read from the task with process_vm_readv into
 * one reusable buffer (large iovec batches), falling back to /proc/PID/mem
 * for mappings the task cannot read itself (PROT_NONE, write-only), and
 * written out back to back. Nothing is held beyond one buffer (two halves
 * of it for a big file: the kernel writes one through io_uring while the
 * next is read and the last one hashed, all on this thread).
 */
import { readSync, writeSync, fsyncSync } from 'node:fs';
import { processVmReadv, ProcMem, PAGE_SIZE, ReplacingFile, Uring, type RemoteRange, type UringWrite } from '../../sys/index.js';
import type { PagemapEntry } from '../../images/messages.js';
import { FileHasher, imagePath, vmhHalves } from '../../images/index.js';
import type { PagemapTarget } from '../../images/page-xfer.js';
import type { PageServerClient } from './page-server-client.js';
import { PE_PARENT, PE_LAZY, PE_PRESENT } from '../../images/flags.js';
import { CriuTsError } from '../../errors.js';
import { mark } from '../../timeline.js';


/**
 * 4 MiB: measured beside 1 to 32 MiB (bench/, 256 MiB subject), copies
 * in 2 to 8 MiB chunks run as fast as in 32 MiB ones (the chunk stays in
 * cache between the read and the write), and peak RSS drops by 28 MiB.
 */
const BUF_BYTES = 4 << 20;
/**
 * A file at least this big is written through io_uring from two halves of
 * the buffer: the kernel writes one half while this thread hashes it and
 * reads the next pages into the other. Smaller files fit in one buffer:
 * nothing to overlap.
 */
const OVERLAP_BYTES = BUF_BYTES;
/**
 * The buffer of a writer whose file is smaller than that: 64 KiB, used
 * again and again. A buffer the size of the file (a 1 MiB dump's 1.1 MB)
 * was a fresh mapping whose every page the kernel's copy touched first:
 * 280 page faults, about 4 ms of CPU per dump on a VM where a first touch
 * costs 13 us, where 18 process_vm_readv and write calls of 64 KiB into
 * the same 16 pages cost under 1 ms (docs/performance.md, "1 MiB through
 * the CLI, session 15"). It is also under glibc's mmap threshold (128 KiB,
 * bin/criu-ts): heap memory, not a mapping made and unmade per writer.
 */
const SMALL_BUF_BYTES = 64 << 10;
/**
 * Buffers of finished writers, reused: a dump of many tasks must not
 * allocate a buffer per task (writers nest, hence a pool). Any size is
 * kept (a small task's writer gets a small one), the few largest only:
 * a fresh 700 KiB buffer per task of a 100-process tree was 70 MiB of
 * garbage that glibc kept after V8 freed it.
 */
const pool: Buffer[] = [];
const POOL_MAX = 4;

function takeBuffer(want: number): Buffer {
  let best = -1;
  pool.forEach((b, i) => {
    if (b.length >= want && (best < 0 || b.length < (pool[best] as Buffer).length)) best = i;
  });
  return best >= 0 ? (pool.splice(best, 1)[0] as Buffer) : Buffer.allocUnsafe(want);
}

function giveBack(b: Buffer): void {
  pool.push(b);
  if (pool.length > POOL_MAX) {
    pool.sort((x, y) => y.length - x.length);
    pool.length = POOL_MAX;
  }
}
/**
 * Each half of an overlapping writer: 1 MiB. The kernel writes one while
 * the other is hashed and filled; 2 MiB halves were no faster (1 GiB dump,
 * A/B) and took 2 MiB more of a 256 MiB dump's peak RSS.
 */
const HALF_BYTES = 1 << 20;
/** The same for overlapping writers: two halves of HALF_BYTES. */
const halvesPool: [Buffer, Buffer][] = [];

export interface PagesProgress {
  (bytes: number): void;
}

/** Pages sent to a page server instead of a local pages-N.img (dump --page-server). */
export interface RemotePages {
  client: PageServerClient;
  target: PagemapTarget;
  /** subtracted from every address sent (a shmem pagemap's entries are offsets into the object) */
  bias?: bigint;
}

/** Append `n` pages at `vaddr` with `flags` to a pagemap: the last entry grows when it runs on with the same flags. */
export function appendEntry(entries: PagemapEntry[], vaddr: bigint, n: number, flags: number, runBroken: boolean): void {
  const last = entries[entries.length - 1];
  if (last && !runBroken && last.flags === flags && last.vaddr + (last.nr_pages ?? 0n) * BigInt(PAGE_SIZE) === vaddr) {
    last.nr_pages = (last.nr_pages ?? 0n) + BigInt(n);
  } else {
    entries.push({ vaddr, compat_nr_pages: 0, flags, nr_pages: BigInt(n) });
  }
}

/** What the memory dump hands its pages to: a PagesWriter, or a pre-dump's DeferredPages (copied once the tree runs). */
export interface PageSink {
  readonly entries: PagemapEntry[];
  readonly pagesWritten: number;
  readonly isRemote: boolean;
  readonly remoteHasParent: boolean;
  breakRun(): void;
  add(vaddr: bigint, nrPages: number, flags: number, viaMem: boolean): void;
  /** `alt`: how to read these pages if they must be copied after all (a page server without a parent) */
  addParent(vaddr: bigint, nrPages: number, alt: { flags: number; viaMem: boolean }): void;
  /** dump --lazy-pages: pages left in the frozen task, served later by the dump's page server (a PE_LAZY entry, nothing read) */
  addLazy(vaddr: bigint, nrPages: number): void;
  close(): void;
}

export class PagesWriter implements PageSink {
  readonly entries: PagemapEntry[] = [];
  pagesWritten = 0;
  /** pages of PE_LAZY entries (addLazy): stats-dump's pages_lazy */
  pagesLazy = 0;
  private fd: number;
  /** Written under a private name, renamed to pages-N.img at close: never through a planted link (none when remote). */
  private readonly file: ReplacingFile | undefined;
  /** SHA-256 as the bytes go out (criu-ts-checksums): no second read of a big file. */
  private readonly hasher: FileHasher | undefined;
  /** Remote: one pagemap entry per run of bytes in the buffer, sent with them. */
  private chunks: { vaddr: bigint; nr: number; flags: number }[] = [];
  private buf: Buffer;
  /** the other half, while the kernel writes this one (overlapping writers only) */
  private spare: Buffer | undefined;
  private halves: [Buffer, Buffer] | undefined;
  /** io_uring writes in flight, by half: a half is filled again only once its write is done */
  private readonly ring: Uring | null = null;
  private readonly inFlight = new Map<Buffer, UringWrite>();
  /** where the next bytes go in the file (writes at explicit positions) */
  private filePos = 0;
  private fill = 0;
  private pending: RemoteRange[] = [];
  private pendingLen = 0;
  private procMem: ProcMem | undefined;
  private runBroken = false;
  private closed = false;

  /** The next pages start a new pagemap entry (entries never span two VMAs, as in CRIU). */
  breakRun(): void {
    this.runBroken = true;
  }

  /** `sizeHint`: about how many bytes will go through; a small dump then needs no full-size buffer. */
  constructor(
    dir: string, readonly pagesId: number, private readonly pid: number, private readonly onBytes?: PagesProgress, sizeHint = BUF_BYTES,
    private readonly remote?: RemotePages,
  ) {
    if (remote) {
      // The page server writes the pagemap and pages images; PE_PARENT entries only where it holds a parent image.
      this.remoteHasParent = remote.client.open(remote.target);
      this.file = undefined;
      this.hasher = undefined;
      this.fd = -1;
    } else {
      this.file = new ReplacingFile(imagePath(dir, 'PAGES', pagesId), 0o600);
      // A digest per block too: a lazy-pages daemon checks each run it serves (images/block-hash.ts).
      this.hasher = new FileHasher(this.file.path, true, sizeHint);
      this.fd = this.file.fd;
      if (sizeHint >= OVERLAP_BYTES) this.ring = Uring.shared();
    }
    if (this.ring !== null) {
      // In the hash module's memory where it runs: read there, the pages are hashed where they are (images/vmh.ts).
      this.halves = halvesPool.pop() ?? vmhHalves() ?? [Buffer.allocUnsafeSlow(HALF_BYTES), Buffer.allocUnsafeSlow(HALF_BYTES)];
      [this.buf, this.spare] = this.halves;
      return;
    }
    // A local file under OVERLAP_BYTES goes through SMALL_BUF_BYTES at a time; a page server's
    // messages, and a big file where there is no io_uring, keep their size.
    const want = remote || sizeHint >= OVERLAP_BYTES ? Math.max(256 << 10, Math.min(BUF_BYTES, sizeHint)) : SMALL_BUF_BYTES;
    this.buf = takeBuffer(want);
  }

  /** Remote: the page server holds a parent image of this pagemap (its answer to OPEN2). */
  remoteHasParent = false;

  /** Whether the pages go to a page server (no local pagemap or pages image). */
  get isRemote(): boolean {
    return this.remote !== undefined;
  }

  /**
   * Queue `nrPages` pages at `vaddr` for the image. `viaMem` selects the
   * /proc/PID/mem path for mappings process_vm_readv refuses.
   */
  add(vaddr: bigint, nrPages: number, flags: number, viaMem: boolean): void {
    appendEntry(this.entries, vaddr, nrPages, flags, this.runBroken);
    this.runBroken = false;
    this.pagesWritten += nrPages;
    let addr = vaddr;
    let left = nrPages * PAGE_SIZE;
    while (left > 0) {
      const room = this.buf.length - this.fill - this.pendingBytes();
      if (room === 0) {
        this.flushReads();
        this.flushWrite();
        continue;
      }
      const take = Math.min(room, left);
      if (this.remote) this.chunks.push({ vaddr: addr, nr: take / PAGE_SIZE, flags });
      if (viaMem) {
        this.flushReads();
        this.readViaMem(addr, take);
      } else {
        this.pending.push({ addr, len: take });
        this.pendingLen += take;
        if (this.pending.length >= 1024) this.flushReads();
      }
      addr += BigInt(take);
      left -= take;
    }
  }

  /**
   * Like add, but the bytes come from `fd` at `fileOff` (a shared memory
   * object read through its /proc/PID/map_files entry: a hole reads as
   * zeros and nothing is allocated or mapped in the task).
   */
  addFromFile(fd: number, fileOff: bigint, vaddr: bigint, nrPages: number, flags: number): void {
    appendEntry(this.entries, vaddr, nrPages, flags, this.runBroken);
    this.runBroken = false;
    this.pagesWritten += nrPages;
    this.flushReads();
    let at = fileOff;
    let addr = vaddr;
    let left = nrPages * PAGE_SIZE;
    while (left > 0) {
      if (this.fill === this.buf.length) this.flushWrite();
      const take = Math.min(this.buf.length - this.fill, left);
      if (this.remote) this.chunks.push({ vaddr: addr, nr: take / PAGE_SIZE, flags });
      addr += BigInt(take);
      const n = readSync(fd, this.buf, this.fill, take, at);
      if (n < take) this.buf.fill(0, this.fill + n, this.fill + take); // past the object's end
      this.fill += take;
      at += BigInt(take);
      left -= take;
    }
  }

  /** `nrPages` pages at `vaddr` that the parent images hold: a PE_PARENT entry, nothing read or written. */
  addParent(vaddr: bigint, nrPages: number): void {
    if (this.remote) {
      // In vaddr order with the data entries before it.
      this.flushReads();
      this.flushWrite();
      this.remote.client.add(PE_PARENT, vaddr - (this.remote.bias ?? 0n), nrPages);
    }
    appendEntry(this.entries, vaddr, nrPages, PE_PARENT, this.runBroken);
    this.runBroken = false;
  }

  addLazy(vaddr: bigint, nrPages: number): void {
    if (this.remote) throw new CriuTsError('EUSAGE', 'dump --lazy-pages serves its pages itself: it takes no --page-server', {});
    appendEntry(this.entries, vaddr, nrPages, PE_LAZY, this.runBroken);
    this.runBroken = false;
    this.pagesLazy += nrPages;
  }

  private pendingBytes(): number {
    return this.pendingLen;
  }

  /**
   * The task runs while its pages are read (a pre-dump's copy, deferred-
   * pages.ts): a range it unmapped meanwhile is stored as zeros instead of
   * failing the copy; its address is in no tracked VMA at the next dump,
   * which copies whatever is mapped there whole. Never for a stopped task,
   * whose unreadable page is an error.
   */
  goneAsZeros = false;

  private readViaMem(addr: bigint, len: number): void {
    this.procMem ??= new ProcMem(this.pid);
    let n: number;
    try {
      n = this.procMem.read(addr, this.buf, this.fill, len);
    } catch (e) {
      if (!this.goneAsZeros || !isUnmappedRead(e)) throw e;
      n = 0;
    }
    if (n !== len) this.buf.fill(0, this.fill + n, this.fill + len);
    this.fill += len;
  }

  private flushReads(): void {
    if (this.pending.length === 0) return;
    const want = this.pendingBytes();
    const n = processVmReadv(this.pid, this.buf, this.fill, this.pending);
    if (n < want) {
      // Some range became unreadable (e.g. a page the task cannot read): take the rest through /proc/PID/mem.
      let skip = n;
      const rest: RemoteRange[] = [];
      for (const r of this.pending) {
        if (skip >= r.len) {
          skip -= r.len;
          continue;
        }
        rest.push({ addr: r.addr + BigInt(skip), len: r.len - skip });
        skip = 0;
      }
      this.fill += n;
      this.pending = [];
      this.pendingLen = 0;
      for (const r of rest) this.readViaMem(r.addr, r.len);
      return;
    }
    this.fill += n;
    this.pending = [];
    this.pendingLen = 0;
  }

  private flushWrite(): void {
    if (this.remote) {
      let at = 0;
      for (const c of this.chunks) {
        this.remote.client.add(c.flags, c.vaddr - (this.remote.bias ?? 0n), c.nr, this.buf, at);
        at += c.nr * PAGE_SIZE;
      }
      this.chunks = [];
      this.onBytes?.(this.fill);
      this.fill = 0;
      return;
    }
    if (this.fill === 0) return;
    if (this.ring !== null && this.spare !== undefined) {
      // The kernel writes this half while it is hashed here (both only read it); the other is filled next.
      if (this.filePos === 0) mark(`pages ${this.pagesId}: first write queued (the overlap begins)`);
      this.inFlight.set(this.buf, this.ring.write(this.fd, this.buf, 0, this.fill, this.filePos));
      this.hasher?.update(this.buf.subarray(0, this.fill));
      [this.buf, this.spare] = [this.spare, this.buf];
      this.settle(this.buf);
    } else {
      let off = 0;
      while (off < this.fill) off += writeSync(this.fd, this.buf, off, this.fill - off, this.filePos + off);
      this.hasher?.update(this.buf.subarray(0, this.fill));
    }
    this.filePos += this.fill;
    this.onBytes?.(this.fill);
    this.fill = 0;
  }

  /** Wait until the kernel has written `half` (if it is writing it). */
  private settle(half: Buffer): void {
    const w = this.inFlight.get(half);
    if (w === undefined) return;
    this.inFlight.delete(half);
    (this.ring as Uring).wait(w);
  }

  /** Idempotent: a second call (a caller's finally after an early close) does nothing. */
  close(sync = false): void {
    if (this.closed) return;
    this.closed = true;
    let flushed = false;
    try {
      this.flushReads();
      this.flushWrite();
      flushed = true;
    } finally {
      // Even when failing: no write may still be reading a buffer given back (the first error is the one thrown).
      for (const half of [...this.inFlight.keys()]) {
        try {
          this.settle(half);
        } catch (e) {
          if (flushed) throw e;
        }
      }
    }
    if (sync && this.fd >= 0) fsyncSync(this.fd);
    this.file?.commit();
    this.hasher?.done();
    if (this.halves !== undefined) halvesPool.push(this.halves);
    else giveBack(this.buf);
    this.procMem?.close();
    this.procMem = undefined;
  }
}

/** A read of /proc/PID/mem at an address the task no longer maps (EIO). */
function isUnmappedRead(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'EIO' || code === 'EFAULT';
}
