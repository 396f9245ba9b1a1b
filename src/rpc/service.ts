/**
 * `criu-ts swrk FD` and `criu-ts service`: CRIU's two ways of serving RPC.
 *
 * swrk serves the socket its parent handed over (runc passes fd 3, pycriu
 * and libcriu a socketpair end): like CRIU, one request per connection
 * unless the request says keep_open, and always until the client closes.
 *
 * service listens on a SOCK_SEQPACKET path and, like CRIU's cr_service,
 * gives each connection a worker process of its own: `criu-ts swrk 3` with
 * the accepted socket as fd 3 (Node cannot fork, so we spawn). A worker has
 * its own logging state, subreaper bit and restored children, and a failing
 * request cannot take the service down.
 */
import { childProcess } from '../builtins.js';
import { chmodSync, lchownSync, readFileSync, unlinkSync } from 'node:fs';
import { CriuTsError, describeError } from '../errors.js';
import { logLevel, logger, setLogLevel } from '../log.js';
import { ownNodeEnv } from '../node-start.js';
import {
  POLLIN, accept4, bindUnix, closeQuiet, fcntl, listen, peerCred, pollFd, replaceFile, seqpacketSocket, F_SETFD,
  FD_CLOEXEC,
} from '../sys/index.js';
import { handleRequest, sendDecodeError } from './handlers.js';
import { RpcConnection } from './transport.js';
import type { RpcMode } from './transport.js';

const log = logger('rpc');

/** Where `criu service` listens by default in CRIU's packaging (criu.socket unit, libcriu's default). */
export const DEFAULT_SERVICE_ADDRESS = '/var/run/criu_service.socket';
/** CRIU's listen(2) backlog. */
const SERVICE_BACKLOG = 16;
/** A service worker's client gets this long between requests; the swrk client owns us and may take its time. */
const SERVICE_IDLE_TIMEOUT_MS = 5 * 60_000;
/** Set in a worker's environment: it serves a service connection, where CRIU forbids rst_sibling. */
const WORKER_ENV = 'CRIU_TS_RPC_MODE';
/** The service's -v for its workers. */
const LOG_LEVEL_ENV = 'CRIU_TS_RPC_LOG_LEVEL';
/** Set in a daemonized service: the listening socket is already open as fd 3. */
const LISTEN_FD_ENV = 'CRIU_TS_SERVICE_FD';


/** Serve one connection to its end: requests in order, one at a time. */
export async function serveConnection(conn: RpcConnection): Promise<void> {
  const idle = conn.mode === 'service' ? SERVICE_IDLE_TIMEOUT_MS : undefined;
  try {
    for (;;) {
      let req;
      try {
        req = await conn.receive(idle);
      } catch (e) {
        if (e instanceof CriuTsError && e.code === 'EUSAGE') sendDecodeError(conn, e);
        log.error(describeError(e));
        return;
      }
      if (req === null) return; // the client is done
      await handleRequest(conn, req);
      // CRIU: without keep_open the connection ends with the answer, except
      // after PRE_DUMP, which waits for the next PRE_DUMP or the DUMP.
      if (req.keep_open !== true && req.type !== 'PRE_DUMP') return;
    }
  } catch (e) {
    // Only the transport throws here (the client went away mid-answer): nothing left to tell anyone.
    log.error(`RPC connection ended: ${describeError(e)}`);
  } finally {
    conn.close();
  }
}

/** `criu-ts swrk FD`: exit status 0 when the client was served (answers carry the outcome). */
export async function runSwrk(fd: number): Promise<number> {
  const mode: RpcMode = process.env[WORKER_ENV] === 'service' ? 'service' : 'swrk';
  const level = process.env[LOG_LEVEL_ENV];
  if (mode === 'service' && level !== undefined && /^\d$/.test(level)) setLogLevel(Number(level));
  try {
    // Our helpers (restore stub, probe children) must not keep the client's socket open.
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    peerCred(fd); // fails early, with its errno, when fd is no connected unix socket
  } catch (e) {
    throw new CriuTsError('EUSAGE', `swrk: fd ${fd} is not an RPC socket: ${describeError(e)}`, { fd }, e);
  }
  await serveConnection(new RpcConnection(fd, mode));
  return 0;
}

export interface ServiceOptions {
  address?: string;
  /** -d/--daemon: detach once listening */
  daemon: boolean;
  /** absolute path of the pidfile, if any */
  pidfile?: string;
  /** --socket-mode: permission bits of the socket (default 0600: only root may connect) */
  socketMode?: number | undefined;
  /** --socket-group: group of the socket, a name or a number (with a mode like 0660, for deliberate sharing) */
  socketGroup?: string | undefined;
}

/** Root only, unlike CRIU's 0666: unprivileged callers are served only when the socket is shared on purpose. */
export const DEFAULT_SOCKET_MODE = 0o600;

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new CriuTsError('EUSAGE', `--socket-group: no group named ${group}`, { group });
}

function listenOn(address: string, mode: number, group: string | undefined): number {
  const gid = group === undefined ? undefined : groupId(group);
  const fd = seqpacketSocket();
  try {
    // CRIU removes a stale socket file before binding (unlink never follows a link).
    try {
      unlinkSync(address);
    } catch {
      // nothing there
    }
    // Born 0700 (umask), then opened up only as asked; nobody can connect in between.
    const oldUmask = process.umask(0o077);
    try {
      bindUnix(fd, address);
    } finally {
      process.umask(oldUmask);
    }
    if (gid !== undefined) lchownSync(address, -1, gid);
    chmodSync(address, mode);
    listen(fd, SERVICE_BACKLOG);
  } catch (e) {
    closeQuiet(fd);
    throw new CriuTsError('EUSAGE', `cannot listen on ${address}: ${describeError(e)}`, { address }, e);
  }
  log.info(`The service socket is bound to ${address}`);
  return fd;
}

/** Written aside and renamed in, so whoever waits for the file never reads it empty. */
function writePidfile(path: string, pid: number): void {
  try {
    replaceFile(path, Buffer.from(String(pid)), 0o600);
  } catch (e) {
    throw new CriuTsError('EUSAGE', `cannot write pidfile ${path}: ${(e as Error).message}`, { path }, e);
  }
}

/** Our own command line again, for a worker or the daemon (bin/criu-ts under the same node). */
function selfArgs(rest: readonly string[]): string[] {
  const script = process.argv[1];
  if (script === undefined) throw new CriuTsError('EINTERNAL', 'cannot tell which script runs criu-ts');
  return [...process.execArgv, script, ...rest];
}

function spawnWorker(connFd: number): void {
  const child = childProcess().spawn(process.execPath, selfArgs(['swrk', '3']), {
    stdio: ['ignore', 'inherit', 'inherit', connFd],
    // The worker logs (between requests) at the service's level; each request then sets its own.
    env: ownNodeEnv({ ...process.env, [WORKER_ENV]: 'service', [LOG_LEVEL_ENV]: String(logLevel()) }),
  });
  child.on('error', (e) => log.error(`worker for connection fd ${connFd}: ${e.message}`));
  child.on('exit', (code, sig) => log.info(`Worker (pid ${child.pid ?? '?'}) exited with ${sig ?? code}`));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `criu-ts service`: never returns unless listening fails. */
export async function runService(o: ServiceOptions): Promise<number> {
  const inherited = process.env[LISTEN_FD_ENV];
  let listenFd: number;
  if (inherited !== undefined) {
    listenFd = Number(inherited);
    delete process.env[LISTEN_FD_ENV];
    fcntl(listenFd, F_SETFD, FD_CLOEXEC);
  } else {
    const address = o.address ?? DEFAULT_SERVICE_ADDRESS;
    listenFd = listenOn(address, o.socketMode ?? DEFAULT_SOCKET_MODE, o.socketGroup);
    if (o.daemon) {
      // daemon(3) by proxy: a detached copy of us inherits the listening socket; we leave once it exists.
      const child = childProcess().spawn(process.execPath, selfArgs(process.argv.slice(2)), {
        stdio: ['ignore', 'ignore', 'ignore', listenFd],
        detached: true,
        env: ownNodeEnv({ ...process.env, [LISTEN_FD_ENV]: '3' }),
      });
      const pid = child.pid;
      if (pid === undefined) throw new CriuTsError('EINTERNAL', 'cannot start the service daemon');
      child.unref();
      if (o.pidfile !== undefined) writePidfile(o.pidfile, pid);
      closeQuiet(listenFd);
      return 0;
    }
  }
  if (o.pidfile !== undefined && inherited === undefined) writePidfile(o.pidfile, process.pid);
  for (;;) {
    log.info('Waiting for connection...');
    while ((pollFd(listenFd, POLLIN, 100) & POLLIN) === 0) await sleep(0);
    let connFd: number;
    try {
      connFd = accept4(listenFd);
    } catch (e) {
      log.error(`cannot accept a connection: ${describeError(e)}`);
      await sleep(100);
      continue;
    }
    log.info('Connected.');
    try {
      spawnWorker(connFd);
    } finally {
      // The worker has its own copy (spawn returns after exec); ours would keep the client waiting.
      closeQuiet(connFd);
    }
  }
}
