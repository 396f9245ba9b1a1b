/**
 * `criu-ts page-server`: receive one dump's pages over TCP into an images
 * directory (src/dump/page-server.ts). With `daemon`, a detached copy of
 * the command serves while this call returns as soon as it listens (CRIU's
 * -d), after writing its pid to `pidfile`.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import { createFileExclusive } from '../sys/index.js';
import { servePages, signalReady, type PageServerResult } from '../dump/page-server.js';

export interface PageServerOptions {
  imagesDir?: string;
  /** address to listen on (default 0.0.0.0) */
  address?: string;
  /** TCP port, 0 for any free one */
  port?: number;
  /** -d: serve from a detached process; return once it listens */
  daemon?: boolean;
  /** with daemon: where the serving process's pid goes */
  pidfile?: string | undefined;
  /** --status-fd: a zero byte is written there once listening */
  statusFd?: number | undefined;
  /** called once listening, with the port */
  onListening?: (port: number) => void;
}

const READY_ENV = 'CRIU_TS_PAGE_SERVER_READY_FD';

export async function runPageServer(opts: PageServerOptions): Promise<PageServerResult> {
  const dir = resolve(opts.imagesDir ?? '.');
  const address = opts.address ?? '0.0.0.0';
  const port = opts.port ?? 0;
  if (opts.daemon) return startDaemon(opts);
  const readyFd = process.env[READY_ENV] === undefined ? undefined : Number(process.env[READY_ENV]);
  return servePages({
    dir, address, port,
    onListening: (p) => {
      opts.onListening?.(p);
      signalReady(opts.statusFd);
      if (readyFd !== undefined) {
        // Tell the parent of a daemon the port, then let it go.
        const b = Buffer.alloc(4);
        b.writeUInt32LE(p, 0);
        process.env[READY_ENV] = undefined;
        signalPort(readyFd, b);
      }
    },
  });
}

function signalPort(fd: number, b: Buffer): void {
  import('node:fs').then(({ writeSync, closeSync }) => {
    writeSync(fd, b);
    closeSync(fd);
  }).catch(() => undefined);
}

/** daemon(3) by proxy: the same command line without -d, detached; we wait for it to listen. */
async function startDaemon(opts: PageServerOptions): Promise<PageServerResult> {
  const args = process.argv.slice(1).filter((a) => a !== '-d' && a !== '--daemon');
  const child = spawn(process.execPath, args, {
    detached: true,
    // Nothing of ours stays open in it: whoever waits for our output is not kept waiting by the daemon (its log: -o).
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [READY_ENV]: '3' },
  });
  const pipe = child.stdio[3];
  if (child.pid === undefined || !pipe || !('on' in pipe)) throw new CriuTsError('EINTERNAL', 'cannot start the page server daemon', {});
  const port = await new Promise<number>((res, rej) => {
    let got = Buffer.alloc(0);
    pipe.on('data', (b: Buffer) => { got = Buffer.concat([got, b]); });
    pipe.on('end', () => (got.length >= 4 ? res(got.readUInt32LE(0)) : rej(new CriuTsError('EUSAGE', 'the page server daemon did not start (run without -d, or with -o FILE, to see why)', {}))));
    child.once('error', rej);
  });
  child.unref();
  if (opts.pidfile !== undefined) createFileExclusive(opts.pidfile, Buffer.from(String(child.pid)), 0o600);
  opts.onListening?.(port);
  signalReady(opts.statusFd);
  return { pagemaps: 0, pages: 0 };
}
