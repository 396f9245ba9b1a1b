/**
 * `criu-ts page-server`: receive one dump's pages over TCP into an images
 * directory (src/dump/page-server.ts). With `daemon`, a detached copy of
 * the command serves while this call returns as soon as it listens (CRIU's
 * -d), after writing its pid to `pidfile`.
 */
import { childProcess } from '../builtins.js';
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import { ownNodeEnv } from '../node-start.js';
import { createFileExclusive } from '../sys/index.js';
import { closeSync, existsSync, statSync, writeSync } from 'node:fs';
import { servePages, signalReady, type PageServerResult } from '../dump/page-server.js';

export { signalReady };
import { linkParent } from '../kinds/memory/parent-images.js';
import { dedup } from './dedup.js';

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
  /** --prev-images-dir (relative to the images dir): the parent images this dump's PE_PARENT entries point into */
  prevImagesDir?: string | undefined;
  /** --auto-dedup: once the dump is stored, free in the parent images the pages it holds again */
  autoDedup?: boolean;
  /** --lazy-pages: serve the images' pages to a `lazy-pages --page-server` daemon instead of receiving a dump */
  lazyPages?: boolean;
}

const READY_ENV = 'CRIU_TS_PAGE_SERVER_READY_FD';

export async function runPageServer(opts: PageServerOptions): Promise<PageServerResult> {
  const dir = resolve(opts.imagesDir ?? '.');
  const address = opts.address ?? '0.0.0.0';
  const port = opts.port ?? 0;
  if (opts.daemon) return startDaemon(opts);
  if (opts.prevImagesDir !== undefined) {
    const prev = resolve(dir, opts.prevImagesDir);
    if (!existsSync(prev) || !statSync(prev).isDirectory()) {
      throw new CriuTsError('EUSAGE', `--prev-images-dir ${opts.prevImagesDir}: no such directory`, { dir: prev });
    }
    if (prev === dir) throw new CriuTsError('EUSAGE', '--prev-images-dir is the images dir itself', { dir });
    linkParent(dir, prev);
  }
  const readyFd = process.env[READY_ENV] === undefined ? undefined : Number(process.env[READY_ENV]);
  return servePages({
    dir, address, port,
    ...(opts.autoDedup ? { autoDedup: (d: string) => { dedup({ imagesDir: d }); } } : {}),
    ...(opts.lazyPages ? { lazy: true } : {}),
    onListening: (p) => {
      opts.onListening?.(p);
      signalReady(opts.statusFd);
      if (readyFd !== undefined) {
        // Tell the parent of a daemon the port, then let it go.
        const b = Buffer.alloc(4);
        b.writeUInt32LE(p, 0);
        delete process.env[READY_ENV];
        signalPort(readyFd, b);
      }
    },
  });
}

function signalPort(fd: number, b: Buffer): void {
  // Synchronously: the bundle runs in a vm.Script (bin/load-bundle.cjs), where a dynamic
  // import() of a built-in failed, silently here, and left the daemon's parent waiting forever.
  try {
    writeSync(fd, b);
    closeSync(fd);
  } catch {
    // the parent is gone: nobody to tell
  }
}

/** daemon(3) by proxy: the same command line without -d, detached; we wait for it to listen. */
async function startDaemon(opts: PageServerOptions): Promise<PageServerResult> {
  const args = process.argv.slice(1).filter((a) => a !== '-d' && a !== '--daemon');
  const { pid, port } = await spawnServer(args, true);
  if (opts.pidfile !== undefined) createFileExclusive(opts.pidfile, Buffer.from(String(pid)), 0o600);
  opts.onListening?.(port);
  signalReady(opts.statusFd);
  return { pagemaps: 0, pages: 0 };
}

export interface StartedPageServer {
  pid: number;
  port: number;
  /** its wait status (as waitpid gives it) once it ends: node reaps its own children, so ask here, not waitpid */
  status: Promise<number>;
}

async function spawnServer(args: string[], detached: boolean): Promise<StartedPageServer> {
  const child = childProcess().spawn(process.execPath, args, {
    detached,
    // Nothing of ours stays open in it: whoever waits for our output is not kept waiting by the daemon (its log: -o).
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: ownNodeEnv({ ...process.env, [READY_ENV]: '3' }),
  });
  const pipe = child.stdio[3];
  if (child.pid === undefined || !pipe || !('on' in pipe)) throw new CriuTsError('EINTERNAL', 'cannot start the page server daemon', {});
  const status = new Promise<number>((res) => child.once('exit', (code, sig) => res(sig !== null ? osConstants.signals[sig] : (code ?? 0) << 8)));
  const port = await new Promise<number>((res, rej) => {
    let got = Buffer.alloc(0);
    pipe.on('data', (b: Buffer) => { got = Buffer.concat([got, b]); });
    pipe.on('end', () => (got.length >= 4 ? res(got.readUInt32LE(0)) : rej(new CriuTsError('EUSAGE', 'the page server did not start (see its log file)', {}))));
    child.once('error', rej);
  });
  child.unref();
  return { pid: child.pid, port, status };
}

export interface PageServerProcessOptions {
  imagesDir: string;
  address: string;
  port: number;
  prevImagesDir?: string | undefined;
  autoDedup?: boolean;
  /** its log (CRIU's -o), at this level */
  logFile?: string | undefined;
  logLevel?: number | undefined;
  /** PAGE_SERVER: detached (its own session); PAGE_SERVER_CHLD: our child */
  detached: boolean;
}

/**
 * The RPC PAGE_SERVER request (CRIU's start_page_server_req): a page
 * server in a process of its own, running bin/criu-ts page-server; resolves
 * once it listens, with its pid and port.
 */
export async function startPageServerProcess(o: PageServerProcessOptions): Promise<StartedPageServer> {
  const script = process.argv[1];
  if (script === undefined) throw new CriuTsError('EINTERNAL', 'cannot tell which script runs criu-ts', {});
  const args = [...process.execArgv, script, 'page-server', '-D', o.imagesDir, '--address', o.address, '--port', String(o.port)];
  if (o.prevImagesDir !== undefined) args.push('--prev-images-dir', o.prevImagesDir);
  if (o.autoDedup) args.push('--auto-dedup');
  if (o.logFile !== undefined) args.push('-o', o.logFile);
  if (o.logLevel !== undefined) args.push(`-v${o.logLevel}`);
  return spawnServer(args, o.detached);
}
