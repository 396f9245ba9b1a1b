/**
 * The serving end of lazy pages over TCP: CRIU's PS_IOV_GET requests of a
 * `lazy-pages --page-server` daemon (ours or CRIU's), answered either from
 * an images dir (`page-server --lazy-pages`, dump/page-server.ts) or, for
 * `dump --lazy-pages` (CRIU's lazy migration), from the dumped tasks
 * themselves while they stay frozen (serveFrozenTree below).
 *
 * Each GET {nr_pages, vaddr, dst_id = the task's id in the images} is
 * answered with an ADD_F header (PE_PRESENT, the number of pages sent: as
 * many of those asked as one run of the task's pagemap holds there, 0 when
 * none) and then their bytes; CLOSE is answered with a 4-byte 0, after
 * which the daemon has every page.
 *
 * Limits: one daemon connection per run (as CRIU); no TLS.
 */
import { nodeNet } from '../builtins.js';
import type { Socket } from 'node:net';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { PAGE_SIZE, ProcMem, processVmReadv } from '../sys/index.js';
import type { PagemapEntry } from '../images/messages.js';
import { PE_PRESENT } from '../images/index.js';
import { pagemapRanges } from '../kinds/memory/parent-images.js';
import { rangeAt, type Range } from '../kinds/memory/ranges.js';
import { decodeIov, encodeIov, PS_IOV_ADD_F, PS_IOV_BYTES, PS_IOV_CLOSE, PS_IOV_FORCE_CLOSE, PS_IOV_GET } from '../images/page-xfer.js';

const log = logger('page-server');

/** Pages for one GET: `n` pages at vaddr (n ≤ nr, 0 when none), and their bytes. */
export type GetAnswer = (id: number, vaddr: bigint, nr: bigint) => { n: number; data?: Buffer };

export interface ServedGets {
  /** pages sent */
  pages: number;
  /** whether the daemon said CLOSE (it has every page) before the connection ended */
  closed: boolean;
}

/** Answer GET requests on `sk` until the connection ends. A request we cannot answer fails the promise (the connection is cut). */
export function answerGets(sk: Socket, answer: GetAnswer): Promise<ServedGets> {
  const done: ServedGets = { pages: 0, closed: false };
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    let failed = false;
    sk.setNoDelay(true);
    sk.on('data', (chunk: Buffer) => {
      if (failed || done.closed) return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      try {
        while (pending.length >= PS_IOV_BYTES) {
          const pi = decodeIov(pending.subarray(0, PS_IOV_BYTES));
          pending = pending.subarray(PS_IOV_BYTES);
          if (pi.cmd === PS_IOV_GET) {
            const id = Number(pi.dstId);
            const a = answer(id, pi.vaddr, pi.nrPages);
            sk.write(encodeIov(PS_IOV_ADD_F, PE_PRESENT, BigInt(a.n), pi.vaddr, BigInt(id)));
            if (a.n > 0 && a.data) sk.write(a.data);
            done.pages += a.n;
          } else if (pi.cmd === PS_IOV_CLOSE || pi.cmd === PS_IOV_FORCE_CLOSE) {
            done.closed = true;
            sk.end(Buffer.alloc(4));
            return;
          } else {
            throw new CriuTsError('EUNSUPPORTED', `page server (lazy pages): command ${pi.cmd} is not served here`, { cmd: pi.cmd });
          }
        }
      } catch (e) {
        failed = true;
        sk.destroy();
        reject(e);
      }
    });
    sk.on('error', () => undefined);
    sk.on('close', () => {
      if (!failed) resolve(done);
    });
  });
}

/** One task of a lazy dump: its pid here and its pagemap as written (entries in address order). */
export interface FrozenTask { pid: number; pagemap: PagemapEntry[] }

export interface FrozenServeOptions {
  address: string;
  port: number;
  /** image id (the pid the images name) → the task */
  tasks: ReadonlyMap<number, FrozenTask>;
  /** once listening: the status-ready notification and the status-fd byte; a rejection stops the serving */
  onListening: (port: number) => Promise<void>;
}

/**
 * dump --lazy-pages: listen, take one daemon's connection and serve the
 * pages of the dumped tasks, read from them (process_vm_readv, /proc/PID/mem
 * where the task itself may not read) while the tree stays frozen, so
 * they are the pages it had at the dump. Resolves once the daemon said
 * CLOSE; a daemon that goes away before is an error (the caller resumes the
 * tree: the restored copy's watchdog kills that copy).
 */
export function serveFrozenTree(o: FrozenServeOptions): Promise<ServedGets> {
  const runs = new Map<number, Range[]>();
  for (const [id, t] of o.tasks) runs.set(id, pagemapRanges(t.pagemap));
  const mems = new Map<number, ProcMem>();
  const answer: GetAnswer = (id, vaddr, nr) => {
    const t = o.tasks.get(id);
    if (!t) throw new CriuTsError('EDUMP', `lazy pages: the daemon asked for pages of task ${id}, which this dump does not hold`, { id });
    const r = rangeAt(runs.get(id) ?? [], vaddr);
    if (!r) return { n: 0 };
    const avail = (r.end - vaddr) / BigInt(PAGE_SIZE);
    const n = Number(avail < nr ? avail : nr);
    const data = Buffer.allocUnsafe(n * PAGE_SIZE);
    let got = 0;
    try {
      got = processVmReadv(t.pid, data, 0, [{ addr: vaddr, len: data.length }]);
    } catch {
      got = 0;
    }
    if (got < data.length) {
      // A page the task cannot read itself (PROT_NONE, write-only): through /proc/PID/mem.
      let m = mems.get(t.pid);
      if (!m) mems.set(t.pid, (m = new ProcMem(t.pid)));
      const more = m.read(vaddr + BigInt(got), data, got, data.length - got);
      if (got + more < data.length) {
        throw new CriuTsError('EDUMP', `lazy pages: task ${t.pid}: cannot read 0x${(vaddr + BigInt(got + more)).toString(16)}, which its images point at`, { pid: t.pid });
      }
    }
    return { n, data };
  };
  return new Promise((resolve, reject) => {
    const server = nodeNet().createServer();
    const finish = (): void => {
      for (const m of mems.values()) m.close();
      mems.clear();
    };
    server.once('error', (e) => reject(new CriuTsError('EUSAGE', `lazy pages: cannot listen on ${o.address}:${o.port}: ${e.message}`, { address: o.address, port: o.port }, e)));
    server.listen(o.port, o.address, () => {
      const a = server.address();
      const port = typeof a === 'object' && a !== null ? a.port : o.port;
      log.info(`lazy pages: serving ${o.tasks.size} task(s) on ${o.address}:${port}`);
      o.onListening(port).catch((e: unknown) => {
        server.close();
        reject(e);
      });
    });
    server.once('connection', (sk: Socket) => {
      server.close(); // one daemon per dump, as CRIU
      log.info(`lazy pages: daemon connected from ${sk.remoteAddress ?? '?'}:${sk.remotePort ?? '?'}`);
      answerGets(sk, answer).then((r) => {
        finish();
        if (!r.closed) {
          reject(new CriuTsError('EDUMP', `lazy pages: the lazy-pages daemon went away after ${r.pages} page(s), before it had every page`, { pages: r.pages }));
          return;
        }
        log.info(`lazy pages: ${r.pages} page(s) served`);
        resolve(r);
      }, (e: unknown) => {
        finish();
        reject(e);
      });
    });
  });
}
