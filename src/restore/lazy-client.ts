/**
 * The restore's end of the lazy-pages daemon (lazy-pages.ts): each task's
 * userfaultfd and the ranges it covers go to the daemon over a
 * SOCK_SEQPACKET socket in the work dir, then the end of the restore. The
 * protocol's names are here; the daemon imports them.
 */
import { join } from 'node:path';
import { closeQuiet, connectUnix, isSyscallError, sendPacket, seqpacketSocket, ENOENT, ECONNREFUSED } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import type { LazyRange, LazySink } from '../kinds/types.js';

/** The daemon's socket in the work dir, as CRIU names it. */
export const LAZY_SOCKET = 'lazy-pages.socket';
/** Ranges per packet: a packet must fit the socket's buffer. */
export const RANGES_PER_PACKET = 1000;

/** The restore's connection to the daemon (restore --lazy-pages). */
export class LazyClient implements LazySink {
  private constructor(private fd: number) {}

  /** Connect to the daemon's socket in `workDir`, waiting up to `waitMs` for it to appear (it may still be starting). */
  static async connect(workDir: string, waitMs = 5000): Promise<LazyClient> {
    const path = join(workDir, LAZY_SOCKET);
    const until = Date.now() + waitMs;
    for (;;) {
      const fd = seqpacketSocket();
      try {
        connectUnix(fd, path);
        return new LazyClient(fd);
      } catch (e) {
        closeQuiet(fd);
        const again = isSyscallError(e) && (e.errno === ENOENT || e.errno === ECONNREFUSED);
        if (!again || Date.now() > until) {
          throw new CriuTsError('EUSAGE', `--lazy-pages: no lazy-pages daemon at ${path} (start \`criu-ts lazy-pages -D DIR\` first): ${(e as Error).message}`, { path }, e);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  handOver(pid: number, imageId: number, uffd: number, ranges: readonly LazyRange[]): void {
    try {
      // A task with thousands of VMAs: its ranges go in several packets (a packet must fit the socket's buffer).
      const hex = ranges.map((r) => [`0x${r.start.toString(16)}`, `0x${r.end.toString(16)}`]);
      sendPacket(this.fd, Buffer.from(JSON.stringify({ pid, image: imageId, ranges: hex.slice(0, RANGES_PER_PACKET) })), [uffd]);
      for (let i = RANGES_PER_PACKET; i < hex.length; i += RANGES_PER_PACKET) {
        sendPacket(this.fd, Buffer.from(JSON.stringify({ pid, more: hex.slice(i, i + RANGES_PER_PACKET) })));
      }
    } catch (e) {
      throw new CriuTsError('ERESTORE', `task ${pid}: the lazy-pages daemon is gone: ${(e as Error).message}`, { pid }, e);
    } finally {
      closeQuiet(uffd);
    }
  }

  /** The tasks run (ok) or were killed: the daemon serves to the end, or gives up. */
  finish(ok: boolean): void {
    if (this.fd < 0) return;
    try {
      sendPacket(this.fd, Buffer.from(JSON.stringify({ done: ok })));
    } catch {
      // the daemon is gone: its watchdog handles the tasks
    }
    closeQuiet(this.fd);
    this.fd = -1;
  }
}
