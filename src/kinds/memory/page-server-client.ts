/**
 * The dump side of CRIU's page server (`dump --page-server --address A
 * --port P`): pagemaps and page contents go over one TCP connection to a
 * page server (`criu-ts page-server` or CRIU's), which writes
 * pagemap-*.img and pages-*.img on its side; every other image stays in
 * the dump's own directory. The wire format is in images/page-xfer.ts.
 *
 * Blocking I/O on a socket of our own: the dump is synchronous while the
 * tree is frozen, and the page server answers only OPEN2 and CLOSE.
 * Limits: no TLS (CRIU's --tls), no incremental dumps through it yet.
 */
import { closeSync, readSync, writeSync } from 'node:fs';
import { nodeNet } from '../../builtins.js';
import { CriuTsError } from '../../errors.js';
import { socket, connect } from '../../sys/index.js';
import {
  decodeIov, encodeDstId, encodeIov, PS_IOV_ADD_F, PS_IOV_BYTES, PS_IOV_CLOSE, PS_IOV_GET, PS_IOV_OPEN2, type PagemapTarget,
} from '../../images/page-xfer.js';
import { AF_INET, AF_INET6 } from '../../sys/socket.js';

const SOCK_STREAM_CLOEXEC = 1 | 0o2000000;

function sockaddrOf(address: string, port: number): { family: number; sa: Buffer } {
  const v = nodeNet().isIP(address);
  if (v === 4) {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    address.split('.').forEach((p, i) => sa.writeUInt8(Number(p), 4 + i));
    return { family: AF_INET, sa };
  }
  if (v === 6) {
    const sa = Buffer.alloc(28);
    sa.writeUInt16LE(AF_INET6, 0);
    sa.writeUInt16BE(port, 2);
    expandV6(address).copy(sa, 8);
    return { family: AF_INET6, sa };
  }
  throw new CriuTsError('EUSAGE', `--address ${address}: not an IPv4 or IPv6 address`, { address });
}

function expandV6(a: string): Buffer {
  const out = Buffer.alloc(16);
  let text = a;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const parts = v4[1].split('.').map(Number);
    tail.push(((parts[0] ?? 0) << 8) | (parts[1] ?? 0), ((parts[2] ?? 0) << 8) | (parts[3] ?? 0));
    text = text.slice(0, -v4[1].length).replace(/:$/, ':0');
  }
  const [head = '', rest] = text.split('::');
  const h = head === '' ? [] : head.split(':').map((x) => parseInt(x, 16));
  const r = rest === undefined ? [] : rest === '' ? [] : rest.split(':').map((x) => parseInt(x, 16));
  const words = [...h, ...new Array<number>(Math.max(0, 8 - h.length - r.length - tail.length)).fill(0), ...r, ...tail].slice(0, 8);
  words.forEach((w, i) => out.writeUInt16BE(w & 0xffff, i * 2));
  return out;
}

export class PageServerClient {
  private closed = false;
  private current: bigint | undefined;

  private constructor(private readonly fd: number, readonly where: string) {}

  /** Connect to a page server at an IPv4/IPv6 address (CRIU's --address takes a host name too: resolve it first). */
  static connect(address: string, port: number): PageServerClient {
    const where = `${address.includes(':') ? `[${address}]` : address}:${port}`;
    const { family, sa } = sockaddrOf(address, port);
    const fd = socket(family, SOCK_STREAM_CLOEXEC, 0);
    try {
      connect(fd, sa);
    } catch (e) {
      closeSync(fd);
      throw new CriuTsError('EDUMP', `cannot connect to the page server at ${where}: ${(e as Error).message}`, { address, port }, e);
    }
    return new PageServerClient(fd, where);
  }

  private send(b: Buffer, off = 0, len = b.length - off): void {
    let done = 0;
    while (done < len) {
      try {
        done += writeSync(this.fd, b, off + done, len - done);
      } catch (e) {
        throw new CriuTsError('EDUMP', `page server at ${this.where}: ${(e as Error).message}`, {}, e);
      }
    }
  }

  private receive(n: number): Buffer {
    const b = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const r = readSync(this.fd, b, got, n - got, null);
      if (r === 0) throw new CriuTsError('EDUMP', `the page server at ${this.where} closed the connection`, {});
      got += r;
    }
    return b;
  }

  /** Start the pages of one pagemap image; true when the server holds a parent image of it. */
  open(t: PagemapTarget): boolean {
    const dst = encodeDstId(t);
    this.send(encodeIov(PS_IOV_OPEN2, 0, 0n, 0n, dst));
    this.current = dst;
    return this.receive(1)[0] !== 0;
  }

  /** One pagemap entry of the open image, and its bytes when it has any (PE_PRESENT). */
  add(flags: number, vaddr: bigint, nrPages: number, data?: Buffer, off = 0): void {
    if (this.current === undefined) throw new CriuTsError('EINTERNAL', 'page server: pages sent before OPEN2', {});
    this.send(encodeIov(PS_IOV_ADD_F, flags, BigInt(nrPages), vaddr, this.current));
    if (data) this.send(data, off, nrPages * 4096);
  }

  /**
   * Lazy pages from a page server holding the images (`page-server
   * --lazy-pages`): up to `nrPages` pages of pagemap-`imageId`.img at
   * `vaddr` into `buf`. The server answers ADD_F with how many pages it
   * sends (0: it has none there), then their bytes. Returns that count.
   */
  get(imageId: number, vaddr: bigint, nrPages: number, buf: Buffer): number {
    this.send(encodeIov(PS_IOV_GET, 0, BigInt(nrPages), vaddr, BigInt(imageId)));
    const head = decodeIov(this.receive(PS_IOV_BYTES));
    const n = Number(head.nrPages);
    if (n > nrPages || head.vaddr !== vaddr) {
      throw new CriuTsError('EIMAGE', `page server at ${this.where}: asked for ${nrPages} page(s) at 0x${vaddr.toString(16)}, got ${n} at 0x${head.vaddr.toString(16)}`, {});
    }
    if (n > 0) this.receiveInto(buf, n * 4096);
    return n;
  }

  private receiveInto(b: Buffer, n: number): void {
    let got = 0;
    while (got < n) {
      const r = readSync(this.fd, b, got, n - got, null);
      if (r === 0) throw new CriuTsError('EDUMP', `the page server at ${this.where} closed the connection`, {});
      got += r;
    }
  }

  /** Every page sent: the server answers once it has stored them all. */
  close(): void {
    if (this.closed) return;
    this.send(encodeIov(PS_IOV_CLOSE, 0, 0n, 0n, 0n));
    const status = this.receive(4).readInt32LE(0);
    this.abort();
    if (status !== 0) throw new CriuTsError('EDUMP', `the page server at ${this.where} failed to store the pages (status ${status})`, { status });
  }

  /** Drop the connection (a failed dump): the server sees it end without CLOSE and keeps nothing as complete. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
