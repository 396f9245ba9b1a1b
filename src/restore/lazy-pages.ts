/**
 * The lazy-pages daemon (`criu-ts lazy-pages`); the restore's end of it
 * (`restore --lazy-pages`) is lazy-client.ts. The restore maps each task's private anonymous
 * memory empty, registers it with a userfaultfd made inside the task
 * (kinds/memory/lazy.ts) and sends that fd here; the tasks run at once.
 * This daemon then:
 *
 * - answers each page fault with UFFDIO_COPY of the page from the images
 *   (pages-N.img, through parent images: parent-images.ts), or the zero
 *   page where the dump had none;
 * - follows the task (UFFD_EVENT_*): a fork gives a new uffd for the
 *   child, whose missing pages are the parent's missing pages; mremap moves
 *   what is still to be sent; madvise(DONTNEED) and munmap drop it;
 * - once the restore is done, pushes every page not yet asked for in the
 *   background, in address order from where the task last faulted, a
 *   chunk per UFFDIO_COPY, each copy on a worker thread while the next
 *   chunk is read and checked here (lazy-push.ts), and exits once all are
 *   in place and the restore is done.
 *
 * Protocol with the restore (criu-ts to criu-ts only; CRIU's own is
 * internal to CRIU): a SOCK_SEQPACKET unix socket, `lazy-pages.socket` in
 * the work dir (as CRIU names it). One packet per task: JSON
 * {pid, image, ranges} with the uffd as SCM_RIGHTS; then {done: true|false}.
 *
 * If this process dies before every page is in place, the tasks must not
 * read zeros where their data was (closing the last reference to a uffd
 * unregisters it, and a missing page then faults in as zeros): a watchdog
 * (lazy-watchdog.ts) holds a copy of every uffd and kills the tasks
 * (SIGBUS, then SIGKILL) when we are gone without saying "done".
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  PAGE_SIZE, UFFD_MSG_BYTES, accept4, bindUnix, closeQuiet, decodeUffdMsg, isSyscallError, listen,
  pollFds, read, recvPacket, seqpacketSocket, uffdCopyFrom, uffdZeropage, addr, POLLIN, POLLHUP, POLLERR, EAGAIN,
  EEXIST,
} from '../sys/index.js';
import { LocalPush } from './lazy-push.js';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { imageFile, imagePath, loadImage } from '../images/index.js';
import { CheckedPages } from './lazy-checked-pages.js';
import { ParentChain } from '../kinds/memory/parent-images.js';
import { pageSegments, SERVED } from '../kinds/memory/fill.js';
import { LazyWatchdog } from './lazy-watchdog.js';
import { PageServerClient } from '../kinds/memory/page-server-client.js';
import { LAZY_SOCKET } from './lazy-client.js';
import { LazyTask, onlyIn, type Piece, type Seg } from './lazy-task.js';
import { mark } from '../timeline.js';

const log = logger('lazy-pages');
/** Pages copied on a fault: the faulting one and a few after it (sequential access is the common case). */
const FAULT_PAGES = 16;
/** What a fault's copy is read into: its pages and the blocks around them (lazy-checked-pages.ts). */
const FAULT_ROOM = 2 * FAULT_PAGES * PAGE_SIZE;
/** Pages asked of a page server per request: its answer goes through a buffer of ours. */
const REMOTE_PUSH_BYTES = 256 << 10;
const PS = BigInt(PAGE_SIZE);
/**
 * CRIU_TS_LAZY_PUSH_AFTER_MS: start the background push only this long
 * after the restore is done (default 0). For tests and benchmarks that
 * want pages to stay missing for a while (faults, events); not for use.
 */
const PUSH_AFTER_MS = Number(process.env['CRIU_TS_LAZY_PUSH_AFTER_MS'] ?? 0) || 0;


export interface LazyPagesOptions {
  /** images dir */
  dir: string;
  /** where the unix socket goes (the work dir) */
  workDir: string;
  /** called once the socket listens */
  onListening?: () => void;
  /**
   * lazy-pages --page-server: the task's own pages come from this page
   * server (`page-server --lazy-pages` on the images, or a `dump
   * --lazy-pages`), the pagemaps and the parent images' pages from `dir`
   */
  pageServer?: { address: string; port: number };
  /** serve pages without checking them against criu-ts-checksums */
  skipChecksums?: boolean;
}

export interface LazyPagesStats {
  tasks: number; faults: number; pagesOnFault: number; pagesPushed: number; zeroPages: number;
  /** bytes of pages images hashed to check what was served (lazy-checked-pages.ts) */
  checkedBytes: number;
}


/** Serve one restore's tasks until every page is in place; resolves with what was done. */
export async function serveLazyPages(o: LazyPagesOptions): Promise<LazyPagesStats> {
  const sockPath = join(o.workDir, LAZY_SOCKET);
  rmSync(sockPath, { force: true });
  const lsk = seqpacketSocket();
  const stats: LazyPagesStats = { tasks: 0, faults: 0, pagesOnFault: 0, pagesPushed: 0, zeroPages: 0, checkedBytes: 0 };
  const tasks: LazyTask[] = [];
  const pages = new CheckedPages(o.skipChecksums === true);
  /** each image's own pages file: what a remote page server holds (parent images are read here) */
  const ownPages = new Map<number, string>();
  const chain = new ParentChain(o.dir);
  // Pages from a page server come through here; local ones are copied from a mapping of their file.
  const buf = Buffer.allocUnsafe(o.pageServer ? REMOTE_PUSH_BYTES : 0);
  // Touched before we listen, as the push's buffers (lazy-push.ts): a fault's copy pays no first touches.
  const faultBuf = Buffer.allocUnsafeSlow(FAULT_ROOM).fill(0);
  const msgs = Buffer.alloc(UFFD_MSG_BYTES * 32);
  let conn = -1;
  let done: boolean | undefined;
  let pushFrom = Infinity;
  let rr = 0;
  let pushedAny = false;
  // Connected before anything listens: a page server that does not answer fails the daemon before any restore relies on it.
  const remote = o.pageServer ? PageServerClient.connect(o.pageServer.address, o.pageServer.port) : undefined;
  const watchdog = new LazyWatchdog();
  const drop = (t: LazyTask, why: string): void => {
    if (t.dropped) return;
    log.info(`${t.label}: ${why}; ${t.pending.length} piece(s) left unsent`);
    t.dropped = true;
    // With a copy of ours still running on it, closed when the last one ends (lazy-push.ts).
    if (t.flying.length === 0) closeQuiet(t.uffd);
    tasks.splice(tasks.indexOf(t), 1);
  };
  const local = new LocalPush(pages, { pushed: (n) => (stats.pagesPushed += n), gone: (t) => drop(t, 'its memory is gone') });
  const isRemote = (t: LazyTask, p: Piece): boolean => remote !== undefined && (p.path === SERVED || p.path === ownPages.get(t.imageId));
  /** Copy `len` bytes of piece data at task address `at` (inside piece p). */
  const copy = (t: LazyTask, p: Piece, at: bigint, len: number): 'ok' | 'again' | 'gone' => {
    let src: bigint;
    if (remote && isRemote(t, p)) {
      const want = len / PAGE_SIZE;
      const n = remote.get(t.imageId, p.img + (at - p.addr), want, buf);
      if (n !== want) throw new CriuTsError('EIMAGE', `page server at ${remote.where}: ${imageFile('PAGEMAP', t.imageId)} has ${want} page(s) at 0x${(p.img + (at - p.addr)).toString(16)}, the server sent ${n}`, {});
      src = addr(buf);
    } else {
      // A fault's few pages: read, checked and copied here, beside any push running.
      for (let done = 0; done < len;) {
        const r = pages.read(p.path, p.off + (at - p.addr) + BigInt(done), len - done, faultBuf);
        const res = copyFrom(t, at + BigInt(done), addr(faultBuf) + BigInt(r.at), r.len);
        if (res !== 'ok') return res;
        done += r.len;
      }
      return 'ok';
    }
    return copyFrom(t, at, src, len);
  };
  /** UFFDIO_COPY of `len` bytes of ours at `src` to task address `at`, pages found present skipped. */
  const copyFrom = (t: LazyTask, at: bigint, src: bigint, len: number): 'ok' | 'again' | 'gone' => {
    let at2 = at;
    let left = len;
    let from = 0;
    while (left > 0) {
      const r = uffdCopyFrom(t.uffd, at2, src + BigInt(from), left);
      if (r === -EAGAIN) return 'again';
      if (r === -EEXIST) {
        // That page is there already (a fault's copy raced us, or the task wrote it after a fork): skip it.
        at2 += PS;
        from += PAGE_SIZE;
        left -= PAGE_SIZE;
        continue;
      }
      if (r < 0) return 'gone';
      at2 += BigInt(r);
      from += r;
      left -= r;
    }
    return 'ok';
  };
  const serveFault = (t: LazyTask, address: bigint): 'ok' | 'again' | 'gone' => {
    const a = address & ~(PS - 1n);
    const i = t.find(a);
    stats.faults++;
    if (i < 0) {
      // Nothing of the dump there (never touched, or dropped since): zeros, as the kernel would give.
      const r = uffdZeropage(t.uffd, a, PAGE_SIZE);
      if (r === -EAGAIN) return 'again';
      if (r < 0 && r !== -EEXIST) return 'gone';
      stats.zeroPages++;
      return 'ok';
    }
    const p = t.pending[i] as Piece;
    const end = p.addr + p.len;
    const want = a + BigInt(FAULT_PAGES) * PS;
    const to = want < end ? want : end;
    const r = copy(t, p, a, Number(to - a));
    if (r !== 'ok') return r;
    t.cut(a, to);
    t.cursor = to;
    stats.pagesOnFault += Number((to - a) / PS);
    return 'ok';
  };
  const retry: { t: LazyTask; address: bigint }[] = [];
  const segsOf = new Map<number, readonly Seg[]>();
  const readEvents = (t: LazyTask): void => {
    for (;;) {
      let n: number;
      try {
        n = read(t.uffd, msgs);
      } catch (e) {
        if (isSyscallError(e) && e.errno === EAGAIN) return;
        throw e;
      }
      if (n <= 0) return;
      for (let off = 0; off + UFFD_MSG_BYTES <= n; off += UFFD_MSG_BYTES) {
        const m = decodeUffdMsg(msgs, off);
        switch (m.event) {
          case 'pagefault': {
            // The timeline (CRIU_TS_TIMELINE) gets the first few: those a task's start waits for.
            if (stats.faults < 8) mark(`lazy-pages: fault ${stats.faults} at 0x${m.address.toString(16)}`);
            const r = serveFault(t, m.address);
            if (stats.faults <= 8) mark(`lazy-pages: fault ${stats.faults - 1} served`);
            if (r === 'again') retry.push({ t, address: m.address });
            else if (r === 'gone') return drop(t, 'its memory is gone');
            break;
          }
          case 'fork': {
            const child = new LazyTask(`${t.label}>fork`, m.ufd, t.pending.map((p) => ({ ...p })), 0, t.imageId);
            tasks.push(child);
            watchdog.hold(m.ufd, 0);
            log.debug(`${t.label}: forked; the child's ${child.pending.length} piece(s) follow on uffd ${m.ufd}`);
            break;
          }
          case 'remap': {
            t.gen++;
            const moved = t.cut(m.from, m.from + m.len);
            t.insert(moved.map((p) => ({ ...p, addr: p.addr - m.from + m.to })));
            break;
          }
          case 'remove':
          case 'unmap':
            t.gen++;
            t.cut(m.start, m.end);
            break;
          default:
            log.warn(`${t.label}: userfaultfd event ${m.code} ignored`);
        }
      }
    }
  };
  /** Start (local pages) or make (a page server's) one push; false when there is none to make now. */
  const push = (): boolean => {
    for (let k = 0; k < tasks.length; k++) {
      const t = tasks[(rr + k) % tasks.length] as LazyTask;
      const n = t.next();
      if (!n) continue;
      const { p, at } = n;
      if (!isRemote(t, p)) {
        if (!local.canStart()) return false;
        rr = (rr + k + 1) % Math.max(1, tasks.length);
        if (!pushedAny) mark('lazy-pages: first push');
        local.start(t, p, at, Number(n.len < BigInt(local.chunk) ? n.len : BigInt(local.chunk)));
        if (!pushedAny) mark('lazy-pages: first push read, checked, its copy started');
        pushedAny = true;
        return true;
      }
      rr = (rr + k + 1) % Math.max(1, tasks.length);
      const most = BigInt(REMOTE_PUSH_BYTES);
      const len = Number(n.len < most ? n.len : most);
      const r = copy(t, p, at, len);
      if (r === 'gone') drop(t, 'its memory is gone');
      else if (r === 'ok') {
        t.cut(at, at + BigInt(len));
        t.cursor = at + BigInt(len);
        stats.pagesPushed += len / PAGE_SIZE;
      }
      return true;
    }
    return false;
  };
  try {
    // Before we listen: a restore comes only after (see CheckedPages.prepare, again at its connection).
    pages.prepare(o.dir);
    bindUnix(lsk, sockPath);
    listen(lsk, 1);
    log.info(`listening on ${sockPath}`);
    o.onListening?.();
    for (;;) {
      const work = tasks.some((t) => t.pending.length > 0) || retry.length > 0;
      if (done !== undefined && !work) break;
      // Pushing starts once the restore is done and its tasks run (PUSH_AFTER_MS
      // later if asked): before that, nothing of theirs can fault, and a push
      // would take the CPU (and the task's mmap lock) from the restore's own
      // last steps, so the tasks' first instruction would come later.
      const pushing = work && done === true && Date.now() >= pushFrom;
      const fds = [conn >= 0 ? conn : lsk, ...tasks.map((t) => t.uffd)];
      const rev = pollFds(fds, POLLIN, pushing || retry.length > 0 ? 0 : 20);
      if (((rev[0] ?? 0) & (POLLIN | POLLHUP | POLLERR)) !== 0) {
        if (conn < 0) {
          conn = accept4(lsk);
          mark('lazy-pages: restore connected');
          log.info('restore connected');
          // What was opened ahead is kept if nothing changed since; else read again now, while the restore makes its tasks.
          pages.prepare(o.dir);
          mark('lazy-pages: pages images prepared');
        } else {
          // Every packet queued now, before any fault is served: a task's ranges
          // may come in several packets, all sent before it runs, and a fault in
          // a range not read yet would be answered with zeros.
          do {
            const pkt = recvPacket(conn, 1);
            if (pkt === null) {
              closeQuiet(conn);
              conn = -1;
              done ??= false;
            } else {
              const m = JSON.parse(pkt.data.toString('utf8')) as { pid?: number; image?: number; ranges?: [string, string][]; more?: [string, string][]; done?: boolean };
              if (m.more !== undefined) {
                // More ranges of a task already handed over.
                const t = tasks.find((x) => x.pid === m.pid);
                const segs = segsOf.get(m.pid ?? 0);
                if (!t || !segs) throw new CriuTsError('EINTERNAL', `lazy-pages: ranges for task ${m.pid ?? '?'}, which was not handed over`, {});
                t.insert(onlyIn(segs, m.more.map(([a, b]) => ({ start: BigInt(a), end: BigInt(b) }))));
              } else if (m.done !== undefined) {
                done = m.done;
                pushFrom = Date.now() + PUSH_AFTER_MS;
                mark(`lazy-pages: restore ${done ? 'done' : 'failed'}`);
                log.info(`restore ${done ? 'done' : 'failed'}`);
              } else if (done === undefined) {
                const uffd = pkt.fds[0];
                if (uffd === undefined || m.pid === undefined || m.image === undefined) throw new CriuTsError('EINTERNAL', 'lazy-pages: a task packet without its uffd', {});
                const ranges = (m.ranges ?? []).map(([a, b]) => ({ start: BigInt(a), end: BigInt(b) }));
                const [head, ...pagemap] = loadImage(o.dir, 'PAGEMAP', m.image).entries;
                ownPages.set(m.image, imagePath(o.dir, 'PAGES', head.pages_id));
                const segs = [...pageSegments(chain, imageFile('PAGEMAP', m.image), imagePath(o.dir, 'PAGES', head.pages_id), pagemap).segs]
                  .sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
                if (!remote && segs.some((g) => g.path === SERVED)) {
                  throw new CriuTsError('EIMAGE', `${imageFile('PAGEMAP', m.image)}: pages a dump --lazy-pages left to its page server; start lazy-pages with --page-server --address --port of that dump`, { image: m.image });
                }
                segsOf.set(m.pid, segs);
                const t = new LazyTask(`task ${m.pid}`, uffd, onlyIn(segs, ranges), m.pid, m.image);
                tasks.push(t);
                watchdog.hold(uffd, m.pid);
                stats.tasks++;
                mark(`lazy-pages: ${t.label} handed over`);
                log.info(`${t.label}: ${ranges.length} lazy VMA(s), ${t.pending.reduce((n, p) => n + p.len, 0n) / PS} page(s) to serve`);
              }
            }
          } while (conn >= 0 && ((pollFds([conn], POLLIN, 0)[0] ?? 0) & (POLLIN | POLLHUP | POLLERR)) !== 0);
        }
      }
      if (done === false) {
        // The restore failed and killed its tasks: nobody to serve, nobody for the watchdog to kill.
        for (const t of [...tasks]) drop(t, 'the restore failed');
        watchdog.done();
        throw new CriuTsError('ERESTORE', 'the restore failed (its tasks are gone): nothing to serve', {});
      }
      // Faults and events first: a task waits on each.
      for (let i = 1; i < fds.length; i++) {
        const t = tasks.find((x) => x.uffd === fds[i]);
        if (t && ((rev[i] ?? 0) & POLLIN) !== 0) readEvents(t);
      }
      for (const r of retry.splice(0)) {
        if (!tasks.includes(r.t)) continue;
        const res = serveFault(r.t, r.address);
        if (res === 'again') retry.push(r);
        else if (res === 'gone') drop(r.t, 'its memory is gone');
      }
      const quiet = !rev.some((x) => x !== 0);
      const started = pushing && quiet && push();
      local.check();
      // Nothing more to start (every buffer in a copy, or all that is left in flight): on until a copy ends.
      if (local.busy && quiet && (!started || !local.canStart())) await local.anyEnd();
      else await new Promise((res) => setImmediate(res));
    }
    await local.drain();
    local.check();
    watchdog.done();
    remote?.close();
    stats.checkedBytes = pages.hashedBytes;
    log.info(`all pages in place: ${stats.tasks} task(s), ${stats.faults} fault(s) (${stats.pagesOnFault} pages), ${stats.pagesPushed} pages pushed, ${stats.zeroPages} zero pages`);
    return stats;
  } catch (e) {
    watchdog.fail();
    throw e;
  } finally {
    // No uffd closed under a copy still running, no buffer reused under one.
    await local.drain();
    local.close();
    for (const t of tasks) closeQuiet(t.uffd);
    pages.close();
    if (conn >= 0) closeQuiet(conn);
    closeQuiet(lsk);
    remote?.abort();
    rmSync(sockPath, { force: true });
  }
}
