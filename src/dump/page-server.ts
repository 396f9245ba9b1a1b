/**
 * The receiving end of CRIU's page server (`criu-ts page-server -D DIR
 * --port P`): it listens on TCP, takes one connection from a dumper
 * (`criu-ts dump --page-server` or CRIU's), and writes what arrives as
 * pagemap-<pid>.img / pagemap-shmem-<id>.img and pages-<N>.img into DIR,
 * as CRIU's page server does (pages ids from 0x10001, clear of the
 * dumper's own when both write one directory). Wire format:
 * images/page-xfer.ts.
 *
 * Files are written under private names and renamed in only when their
 * pagemap is complete; a connection that ends before CLOSE leaves nothing.
 *
 * Chains (pre-dumps through the server): DIR/parent (made by
 * --prev-images-dir here, or by a dumper writing into the same DIR, as
 * zdtm runs them) is the server's parent. OPEN2 answers whether it holds
 * that pagemap; a PE_PARENT entry for addresses the parent does not hold
 * is refused (the restore could not find them), as CRIU's server refuses
 * it. With auto-dedup, the parents' copies of pages sent again are freed
 * once the dump is complete.
 * Limits: one connection per run (as CRIU), no TLS.
 */
import { nodeNet } from '../builtins.js';
import type { Socket } from 'node:net';
import { existsSync, writeSync, closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { ReplacingFile, PAGE_SIZE } from '../sys/index.js';
import { imageFile, imagePath, loadImageIfAny, storeImage, PE_PARENT, PE_PRESENT } from '../images/index.js';
import { pageSegments, SERVED } from '../kinds/memory/fill.js';
import { answerGets, type GetAnswer } from './lazy-serve.js';
import type { PagemapEntry } from '../images/messages.js';
import { coverage, parentDir, ParentChain, PARENT_LINK, type Segment } from '../kinds/memory/parent-images.js';
import { subtract, type Range } from '../kinds/memory/ranges.js';
import {
  decodeDstId, decodeIov, PAGE_SERVER_PAGES_ID_BASE, PS_IOV_ADD, PS_IOV_ADD_F, PS_IOV_BYTES, PS_IOV_CLOSE, PS_IOV_FORCE_CLOSE,
  PS_IOV_HOLE, PS_IOV_OPEN, PS_IOV_OPEN2, PS_IOV_PARENT, type PagemapTarget,
} from '../images/page-xfer.js';

const log = logger('page-server');

export interface PageServerOptions {
  /** absolute images dir the pages go to */
  dir: string;
  address: string;
  /** 0: any free port */
  port: number;
  /** called once listening, with the port (useful with port 0) */
  onListening?: (port: number) => void;
  /** --auto-dedup: once complete, free in the parent images what this dump holds again */
  autoDedup?: (dir: string) => void;
  /**
   * --lazy-pages: serve DIR's pages to a lazy-pages daemon (PS_IOV_GET)
   * instead of receiving a dump; done when the daemon closes the connection.
   */
  lazy?: boolean;
}

export interface PageServerResult {
  pagemaps: number;
  pages: number;
}

function imageName(t: PagemapTarget): string {
  return t.type === 'pid' ? imageFile('PAGEMAP', t.id) : imageFile('SHMEM_PAGEMAP', t.id);
}

/** One pagemap image being received, with its pages file. */
class Incoming {
  readonly entries: PagemapEntry[] = [];
  private readonly pages: ReplacingFile;
  private wrote = 0;
  constructor(private readonly dir: string, readonly target: PagemapTarget, readonly pagesId: number) {
    this.pages = new ReplacingFile(imagePath(dir, 'PAGES', pagesId), 0o600);
  }

  entry(flags: number, vaddr: bigint, nrPages: bigint): void {
    this.entries.push({ vaddr, compat_nr_pages: 0, flags, nr_pages: nrPages });
  }

  write(b: Buffer): void {
    let off = 0;
    while (off < b.length) off += writeSync(this.pages.fd, b, off, b.length - off);
    this.wrote += b.length;
  }

  finish(): number {
    this.pages.commit();
    storeImage(this.dir, this.target.type === 'pid' ? 'PAGEMAP' : 'SHMEM_PAGEMAP', this.target.id, [{ pages_id: this.pagesId }, ...this.entries]);
    return this.wrote / PAGE_SIZE;
  }

  abort(): void {
    try {
      this.pages.abort();
    } catch {
      // nothing to remove
    }
  }
}

/** Serve one dumper's connection; resolves once it closed after CLOSE, with what was stored. */
export function servePages(o: PageServerOptions): Promise<PageServerResult> {
  if (!existsSync(o.dir)) throw new CriuTsError('EUSAGE', `images directory ${o.dir} does not exist`, { dir: o.dir });
  return new Promise((resolve, reject) => {
    const server = nodeNet().createServer({ pauseOnConnect: false });
    server.once('error', (e) => reject(new CriuTsError('EUSAGE', `page server: cannot listen on ${o.address}:${o.port}: ${e.message}`, { address: o.address, port: o.port }, e)));
    server.listen(o.port, o.address, () => {
      const a = server.address();
      const port = typeof a === 'object' && a !== null ? a.port : o.port;
      log.info(`listening on ${o.address}:${port}`);
      o.onListening?.(port);
    });
    server.once('connection', (sk: Socket) => {
      server.close(); // one dumper per run, as CRIU's page server
      log.info(`connection from ${sk.remoteAddress ?? '?'}:${sk.remotePort ?? '?'}`);
      (o.lazy ? serveGets(sk, o.dir) : receive(sk, o.dir)).then((r) => {
        if (o.autoDedup && parentDir(o.dir) !== undefined) o.autoDedup(o.dir);
        resolve(r);
      }, reject);
    });
  });
}

function receive(sk: Socket, dir: string): Promise<PageServerResult> {
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    let cur: Incoming | undefined;
    let dataLeft = 0;
    let nextPagesId = PAGE_SERVER_PAGES_ID_BASE;
    let closed = false;
    let failed = false;
    const done: PageServerResult = { pagemaps: 0, pages: 0 };
    const finishCurrent = (): void => {
      if (!cur) return;
      done.pages += cur.finish();
      done.pagemaps++;
      cur = undefined;
    };
    const fail = (e: unknown): void => {
      if (failed) return;
      failed = true;
      cur?.abort();
      sk.destroy();
      reject(e instanceof CriuTsError ? e : new CriuTsError('EDUMP', `page server: ${(e as Error).message}`, {}, e));
    };
    const hasParent = (t: PagemapTarget): boolean => existsSync(join(dir, PARENT_LINK, imageName(t)));
    // What the parent holds of the open pagemap, read on its first PE_PARENT entry.
    let held: Range[] | undefined;
    const open = (dst: bigint): PagemapTarget => {
      const t = decodeDstId(dst);
      if (!t) throw new CriuTsError('EIMAGE', `page server: unknown pagemap type in dst_id 0x${dst.toString(16)}`, {});
      finishCurrent();
      held = undefined;
      cur = new Incoming(dir, t, nextPagesId++);
      log.debug(`receiving ${imageName(t)} into ${imageFile('PAGES', cur.pagesId)}`);
      return t;
    };
    const step = (): void => {
      for (;;) {
        if (dataLeft > 0) {
          if (pending.length === 0) return;
          const take = Math.min(dataLeft, pending.length);
          cur?.write(pending.subarray(0, take));
          pending = pending.subarray(take);
          dataLeft -= take;
          continue;
        }
        if (pending.length < PS_IOV_BYTES) return;
        const pi = decodeIov(pending.subarray(0, PS_IOV_BYTES));
        pending = pending.subarray(PS_IOV_BYTES);
        switch (pi.cmd) {
          case PS_IOV_OPEN:
            open(pi.dstId);
            break;
          case PS_IOV_OPEN2: {
            const t = open(pi.dstId);
            sk.write(Buffer.from([hasParent(t) ? 1 : 0]));
            break;
          }
          case PS_IOV_PARENT: {
            const t = decodeDstId(pi.dstId);
            const b = Buffer.alloc(4);
            b.writeInt32LE(t && hasParent(t) ? 1 : 0, 0);
            sk.write(b);
            break;
          }
          case PS_IOV_ADD_F:
          case PS_IOV_ADD:
          case PS_IOV_HOLE: {
            const flags = pi.cmd === PS_IOV_ADD_F ? pi.flags : pi.cmd === PS_IOV_ADD ? PE_PRESENT : PE_PARENT;
            if (!cur) throw new CriuTsError('EIMAGE', 'page server: pages before any OPEN', {});
            if (pi.nrPages > 1n << 36n) throw new CriuTsError('EIMAGE', `page server: ${pi.nrPages} pages in one entry`, {});
            if ((flags & PE_PARENT) !== 0) {
              const name = imageName(cur.target);
              const parent = parentDir(dir);
              held ??= parent === undefined ? [] : coverage(parent, name);
              const want = { start: pi.vaddr, end: pi.vaddr + pi.nrPages * BigInt(PAGE_SIZE) };
              if (subtract([want], held).length > 0) {
                throw new CriuTsError('EIMAGE', `page server: ${name}: pages 0x${want.start.toString(16)}-0x${want.end.toString(16)} are said to be in the parent images, which do not hold them`, { name });
              }
            }
            cur.entry(flags, pi.vaddr, pi.nrPages);
            if ((flags & PE_PRESENT) !== 0) dataLeft = Number(pi.nrPages) * PAGE_SIZE;
            break;
          }
          case PS_IOV_CLOSE:
          case PS_IOV_FORCE_CLOSE: {
            finishCurrent();
            closed = true;
            const b = Buffer.alloc(4);
            sk.end(b);
            return;
          }
          default:
            throw new CriuTsError('EUNSUPPORTED', `page server: command ${pi.cmd} is not supported`, { cmd: pi.cmd });
        }
      }
    };
    sk.on('data', (chunk: Buffer) => {
      if (failed || closed) return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      try {
        step();
      } catch (e) {
        fail(e);
      }
    });
    sk.on('error', (e) => fail(e));
    sk.on('close', () => {
      if (failed) return;
      if (!closed) {
        fail(new CriuTsError('EDUMP', 'page server: the dumper went away before every page was sent (no CLOSE); nothing was kept', {}));
        return;
      }
      log.info(`stored ${done.pagemaps} pagemap(s), ${done.pages} page(s)`);
      resolve(done);
    });
  });
}

/**
 * The lazy side (`page-server --lazy-pages`): PS_IOV_GET answered
 * (lazy-serve.ts) from DIR's pagemap-<id>.img and pages, read through the
 * parent images where the pagemap says PE_PARENT.
 */
function serveGets(sk: Socket, dir: string): Promise<PageServerResult> {
  const chain = new ParentChain(dir);
  const maps = new Map<number, Segment[]>();
  const files = new Map<string, number>();
  const segsOf = (id: number): Segment[] => {
    let s = maps.get(id);
    if (!s) {
      const name = imageFile('PAGEMAP', id);
      const img = loadImageIfAny(dir, 'PAGEMAP', id);
      if (!img) throw new CriuTsError('EIMAGE', `page server: no ${name} in ${dir}`, { id });
      const [head, ...pagemap] = img.entries;
      s = pageSegments(chain, name, imagePath(dir, 'PAGES', head.pages_id), pagemap).segs;
      s.sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
      maps.set(id, s);
    }
    return s;
  };
  const answer: GetAnswer = (id, vaddr, nr) => {
    const seg = segsOf(id).find((g) => g.vaddr <= vaddr && vaddr < g.vaddr + g.len);
    const avail = seg ? (seg.vaddr + seg.len - vaddr) / BigInt(PAGE_SIZE) : 0n;
    const n = Number(avail < nr ? avail : nr);
    if (!seg || n === 0) return { n: 0 };
    if (seg.path === SERVED) {
      throw new CriuTsError('EIMAGE', `page server: ${imageFile('PAGEMAP', id)} in ${dir}: the pages at 0x${vaddr.toString(16)} were served by a dump --lazy-pages and are in no image`, { id });
    }
    const data = Buffer.allocUnsafe(n * PAGE_SIZE);
    let fd = files.get(seg.path);
    if (fd === undefined) files.set(seg.path, (fd = openSync(seg.path, 'r')));
    let got = 0;
    while (got < data.length) {
      const r = readSync(fd, data, got, data.length - got, seg.off + (vaddr - seg.vaddr) + BigInt(got));
      if (r === 0) throw new CriuTsError('EIMAGE', `${seg.path}: ends before the pagemap says`, { path: seg.path });
      got += r;
    }
    return { n, data };
  };
  const closeFiles = (): void => {
    for (const fd of files.values()) closeSync(fd);
    files.clear();
  };
  return answerGets(sk, answer).then((r) => {
    closeFiles();
    log.info(`served ${r.pages} page(s) of ${maps.size} pagemap(s)`);
    return { pagemaps: maps.size, pages: r.pages };
  }, (e: unknown) => {
    closeFiles();
    throw e;
  });
}

/** CRIU's --status-fd: one zero byte once the server listens, then the fd is closed. */
export function signalReady(statusFd: number | undefined): void {
  if (statusFd === undefined) return;
  try {
    writeSync(statusFd, Buffer.from([0]));
    closeSync(statusFd);
  } catch (e) {
    throw new CriuTsError('EUSAGE', `--status-fd ${statusFd}: ${(e as Error).message}`, { fd: statusFd }, e);
  }
}
