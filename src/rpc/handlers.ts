/**
 * What each criu_req type does (CRIU's cr_service_work dispatch): a thin
 * layer over src/api. Every request gets exactly one final criu_resp of
 * its own type (NOTIFY round trips may come before it), except a
 * successful dump of the client itself without leave_running, which CRIU
 * never answers either (the client is gone by then).
 */
import { existsSync } from 'node:fs';
import { check } from '../api/check.js';
import { cpuinfoCheck, cpuinfoDump } from '../api/cpuinfo.js';
import type { CheckResult } from '../api/options.js';
import { CRIU_COMPAT_VERSION, version as packageVersion } from '../version.js';
import { CriuTsError, describeError, rpcErrnoOf } from '../errors.js';
import type { CriuFeatures, CriuReq, CriuReqType, CriuResp } from '../images/messages.js';
import { logLevel, logger, resetLogClock, setLogFile, setLogLevel } from '../log.js';
import { ACCESS, POLLHUP, WNOHANG, dirAccessibleBy, pollFd, waitPid, EBADRQC } from '../sys/index.js';
import type { CallerCreds } from '../api/options.js';
import {
  DUMP_SCRIPTS_AFTER, DUMP_SCRIPTS_BEFORE, Notifier, RESTORE_SCRIPTS_AFTER, RESTORE_SCRIPTS_BEFORE,
} from './notify.js';
import {
  badOptions, checkSupported, dumpOptionsFrom, resolveDirs, restoreOptionsFrom, withDefaults,
} from './opts.js';
import type { EffectiveOpts, Operation, RequestDirs } from './opts.js';
import type { RpcConnection } from './transport.js';

const log = logger('rpc');


/**
 * What VERSION reports: the CRIU release whose RPC protocol (rpc.proto up to
 * field 74) and image format criu-ts follows, so version checks in runc,
 * podman and go-criu (major*10000 + minor*100) see a CRIU they accept. No
 * gitid (go-criu would bump the minor for it); `name` says who answers.
 */
export const RPC_COMPAT_VERSION = CRIU_COMPAT_VERSION;

/** Features FEATURE_CHECK may report true only once criu-ts implements them, whatever the kernel offers. */
const IMPLEMENTED = { mem_track: true, lazy_pages: true } as const;

function typeName(t: CriuReqType | number): string {
  return typeof t === 'number' ? `request type ${t}` : t;
}

/** A failure response: cr_errno from rpcErrnoOf (none where CRIU sends none), cr_errmsg the one-line story (CRIU sends its first error line). */
function failure(type: CriuReqType | number, e: unknown, extra: Partial<CriuResp> = {}): CriuResp {
  const crErrno = rpcErrnoOf(e);
  const resp: CriuResp = { type, success: false, ...extra, cr_errmsg: describeError(e).replace(/\s*\n\s*/g, ' ') };
  if (crErrno !== undefined) resp.cr_errno = crErrno;
  return resp;
}

/** Resolve directories and logging for one request, run it, then put the log back. */
async function withRequestLog<T>(conn: RpcConnection, o: EffectiveOpts, op: Operation, fn: (dirs: RequestDirs) => Promise<T>): Promise<T> {
  const dirs = resolveDirs(o, op, conn.peer().pid);
  checkDirsFor(conn.caller().creds, dirs, op);
  const savedLevel = logLevel();
  setLogLevel(o.log_level);
  resetLogClock();
  if (dirs.logFile !== undefined) {
    try {
      setLogFile(dirs.logFile);
    } catch (e) {
      setLogLevel(savedLevel);
      throw badOptions(`cannot open log file ${dirs.logFile}: ${(e as Error).message}`, { path: dirs.logFile });
    }
  }
  try {
    return await fn(dirs);
  } catch (e) {
    log.error(describeError(e));
    throw e;
  } finally {
    setLogFile(undefined);
    setLogLevel(savedLevel);
  }
}

/**
 * An unprivileged caller's directories must be ones it could use itself:
 * the images dir writable for a dump and readable for a restore, the work
 * dir (log file) writable. Asked of the kernel with the caller's fs ids.
 */
function checkDirsFor(creds: CallerCreds | undefined, dirs: RequestDirs, op: Operation): void {
  if (creds === undefined) return;
  const want: [string | undefined, number, string][] = [
    [dirs.imagesDir, op === 'restore' ? ACCESS.R_OK | ACCESS.X_OK : ACCESS.W_OK | ACCESS.X_OK, 'images directory'],
    [dirs.logFile === undefined ? undefined : dirs.workDir, ACCESS.W_OK | ACCESS.X_OK, 'work directory'],
  ];
  for (const [dir, mode, what] of want) {
    if (dir !== undefined && !dirAccessibleBy(creds, dir, mode)) {
      const how = (mode & ACCESS.W_OK) !== 0 ? 'write to' : 'read';
      throw new CriuTsError('EPERM', `uid ${creds.uid} may not ${how} the ${what} ${dir}`, { dir, uid: creds.uid, errno: 1 });
    }
  }
}

/**
 * The options of a DUMP or PRE_DUMP request: an unprivileged caller dumps
 * only what it could ptrace itself, into a dir it could write.
 */
function requestDumpOptions(conn: RpcConnection, o: EffectiveOpts, dirs: RequestDirs, notifier: Notifier): ReturnType<typeof dumpOptionsFrom> {
  checkSupported(o, 'dump', conn.mode);
  const opts = dumpOptionsFrom(o, dirs, conn.peer().pid);
  const creds = conn.caller().creds;
  if (creds !== undefined) opts.asCaller = creds;
  if (!existsSync(`/proc/${opts.pid}`)) throw new CriuTsError('ENOTASK', `no process with pid ${opts.pid}`, { pid: opts.pid });
  opts.notify = notifier.callback();
  return opts;
}

async function handleDump(conn: RpcConnection, req: CriuReq): Promise<void> {
  const o = withDefaults(req.opts);
  // CRIU decides "self dump" on the request as sent, before the client's pid fills in.
  const selfDump = o.pid === undefined || o.pid === 0;
  const notifier = new Notifier(conn, o.notify_scripts === true);
  let error: unknown;
  try {
    await withRequestLog(conn, o, 'dump', async (dirs) => {
      const opts = requestDumpOptions(conn, o, dirs, notifier);
      await notifier.catchUp(DUMP_SCRIPTS_BEFORE);
      const { dump } = await import('../api/dump.js');
      try {
        const r = await dump(opts);
        log.info(`Dumped ${r.pids.length} task(s): ${r.pids.join(' ')}`);
        if (o.auto_dedup === true && opts.prevImagesDir !== undefined) {
          // As the CLI's --auto-dedup: the pages this dump has anew are punched out of the parent images.
          const { dedup } = await import('../api/dedup.js');
          const d = await dedup({ imagesDir: dirs.imagesDir as string });
          log.info(`auto-dedup: ${d.bytesFreed} bytes freed in the parent images`);
        }
        await notifier.catchUp([...DUMP_SCRIPTS_AFTER, ...(opts.leaveRunning === true ? ['network-unlock'] : [])]);
      } catch (e) {
        // CRIU unlocks the network on a failed dump once it has locked it.
        if (notifier.has('network-lock')) await notifier.notify('network-unlock').catch(() => undefined);
        throw e;
      }
    });
  } catch (e) {
    error = e;
  }
  const success = error === undefined;
  if (o.leave_running === true || !selfDump || !success) {
    conn.send(success ? { type: 'DUMP', success, dump: { restored: false } } : failure('DUMP', error, { dump: { restored: false } }));
  }
}

/**
 * PRE_DUMP (CRIU's pre_dump_loop: the client may send more PRE_DUMPs and
 * then a DUMP on the same connection, whatever keep_open says) and
 * SINGLE_PRE_DUMP: copy the tree's memory, leave it running, tracked.
 */
async function handlePreDump(conn: RpcConnection, req: CriuReq, type: 'PRE_DUMP' | 'SINGLE_PRE_DUMP'): Promise<void> {
  const o = withDefaults(req.opts);
  const notifier = new Notifier(conn, o.notify_scripts === true);
  let error: unknown;
  try {
    await withRequestLog(conn, o, 'dump', async (dirs) => {
      const opts = requestDumpOptions(conn, o, dirs, notifier);
      const { preDump } = await import('../api/pre-dump.js');
      const r = await preDump(opts);
      log.info(`Pre-dumped ${r.pids.length} task(s): ${r.pids.join(' ')}`);
    });
  } catch (e) {
    error = e;
  }
  conn.send(error === undefined ? { type, success: true } : failure(type, error));
}

/** PAGE_SERVER_CHLD's page servers: node reaps its children itself, so WAIT_PID asks here for their status. */
const pageServers = new Map<number, Promise<number>>();

/**
 * PAGE_SERVER / PAGE_SERVER_CHLD (CRIU's start_page_server_req): a page
 * server in a process of its own, on opts.ps's address and port (port 0:
 * any), answered once it listens with its pid and port. PAGE_SERVER's is
 * detached; PAGE_SERVER_CHLD's stays the service's child.
 */
async function handlePageServer(conn: RpcConnection, req: CriuReq, type: 'PAGE_SERVER' | 'PAGE_SERVER_CHLD'): Promise<void> {
  const o = withDefaults(req.opts);
  try {
    const ps = await withRequestLog(conn, o, 'dump', async (dirs) => {
      if (o.ps?.fd !== undefined) throw badOptions('ps.fd (a connected page-server socket) is not supported by criu-ts yet');
      const { startPageServerProcess } = await import('../api/page-server.js');
      const imagesDir = dirs.imagesDir;
      if (imagesDir === undefined) throw badOptions('neither images_dir_fd nor images_dir was passed by the RPC client');
      const r = await startPageServerProcess({
        imagesDir, address: o.ps?.address ?? '0.0.0.0', port: o.ps?.port ?? 0, detached: type === 'PAGE_SERVER',
        prevImagesDir: o.parent_img !== undefined && o.parent_img !== '' ? o.parent_img : undefined,
        autoDedup: o.auto_dedup === true, logFile: dirs.logFile, logLevel: o.log_level,
      });
      log.info(`page server started: pid ${r.pid}, port ${r.port}`);
      if (type === 'PAGE_SERVER_CHLD') pageServers.set(r.pid, r.status);
      return r;
    });
    conn.send({ type, success: true, ps: { pid: ps.pid, port: ps.port } });
  } catch (e) {
    conn.send(failure(type, e));
  }
}

/** Kill what a restore created (CRIU's out_kill) and collect what is ours to collect. */
function killRestored(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 2000;
  const left = new Set(pids);
  while (left.size > 0 && Date.now() < deadline) {
    for (const pid of [...left]) {
      try {
        if (waitPid(pid, WNOHANG) !== null || !existsSync(`/proc/${pid}`)) left.delete(pid);
      } catch {
        left.delete(pid); // not our child: its parent collects it
      }
    }
  }
}

async function handleRestore(conn: RpcConnection, req: CriuReq): Promise<void> {
  const o = withDefaults(req.opts);
  let rootPid = -1;
  let error: unknown;
  try {
    await withRequestLog(conn, o, 'restore', async (dirs) => {
      checkSupported(o, 'restore', conn.mode);
      const notifier = new Notifier(conn, o.notify_scripts === true);
      const opts = restoreOptionsFrom(o, dirs);
      const creds = conn.caller().creds;
      if (creds !== undefined) opts.asCaller = creds;
      opts.notify = notifier.callback();
      // As CRIU: the new master of a pty whose master was outside the dump goes to the client, if it takes notifications.
      if (o.orphan_pts_master === true && o.notify_scripts === true) opts.orphanPtsMaster = (fd) => notifier.handOut('orphan-pts-master', fd);
      await notifier.catchUp(RESTORE_SCRIPTS_BEFORE);
      const { restore } = await import('../api/restore.js');
      let r;
      try {
        r = await restore(opts);
      } finally {
        if (r === undefined) notifier.dropHandedOut();
      }
      notifier.setRootPid(r.pid);
      const beforeResume = RESTORE_SCRIPTS_AFTER.filter((s) => s !== 'post-resume');
      try {
        await notifier.sendHandedOut();
        await notifier.catchUp(beforeResume);
      } catch (e) {
        // A refusal before resume kills the tree, as CRIU does; it ran meanwhile only because the core does not call us yet.
        killRestored(r.pids);
        notifier.dropHandedOut();
        throw e;
      }
      try {
        await notifier.notify('post-resume');
      } catch (e) {
        // CRIU only logs a failing post-resume script: the tree runs.
        log.error(describeError(e));
      }
      rootPid = r.pid;
      log.info(`Restored ${r.pids.length} task(s), root ${r.pid}`);
    });
  } catch (e) {
    error = e;
  }
  conn.send(error === undefined ? { type: 'RESTORE', success: true, restore: { pid: rootPid } } : failure('RESTORE', error, { restore: { pid: -1 } }));
}

async function handleCheck(conn: RpcConnection, req: CriuReq): Promise<void> {
  const o = withDefaults(req.opts);
  try {
    const r = await withRequestLog(conn, o, 'check', () => check({}));
    if (r.ok) {
      conn.send({ type: 'CHECK', success: true });
      return;
    }
    const missing = Object.entries(r.features).filter(([, f]) => !f.ok).map(([n]) => n);
    throw new CriuTsError('EUNSUPPORTED', `kernel is missing what criu-ts needs: ${missing.join(', ')}`, { missing });
  } catch (e) {
    conn.send(failure('CHECK', e));
  }
}

/** `cpuinfo dump` into the request's images dir, or `cpuinfo check` of the cpuinfo.img there (with the request's cpu_cap when sent). */
async function handleCpuinfo(conn: RpcConnection, req: CriuReq, type: 'CPUINFO_DUMP' | 'CPUINFO_CHECK'): Promise<void> {
  const o = withDefaults(req.opts);
  try {
    await withRequestLog(conn, o, type === 'CPUINFO_DUMP' ? 'dump' : 'restore', (dirs) => {
      if (type === 'CPUINFO_DUMP') cpuinfoDump({ imagesDir: dirs.imagesDir });
      else cpuinfoCheck({ imagesDir: dirs.imagesDir, cpuCap: req.opts?.cpu_cap });
      return Promise.resolve();
    });
    conn.send({ type, success: true });
  } catch (e) {
    conn.send(failure(type, e));
  }
}

async function featureOk(name: string): Promise<boolean> {
  let r: CheckResult;
  try {
    r = await check({ feature: name });
  } catch {
    return false;
  }
  return r.features[name]?.ok === true;
}

/** CRIU answers only what was asked, false otherwise; success means the check itself worked. */
async function handleFeatureCheck(conn: RpcConnection, req: CriuReq): Promise<void> {
  const want = req.features ?? {};
  try {
    const features: CriuFeatures = { mem_track: false, lazy_pages: false, pidfd_store: false };
    if (want.mem_track === true) features.mem_track = IMPLEMENTED.mem_track && (await featureOk('mem_dirty_track'));
    if (want.lazy_pages === true) {
      features.lazy_pages = IMPLEMENTED.lazy_pages && (await featureOk('uffd')) && (await featureOk('uffd-noncoop'));
    }
    if (want.pidfd_store === true) features.pidfd_store = await featureOk('pidfd_store');
    conn.send({ type: 'FEATURE_CHECK', success: true, features });
  } catch (e) {
    conn.send(failure('FEATURE_CHECK', e));
  }
}

function handleVersion(conn: RpcConnection): void {
  conn.send({
    type: 'VERSION',
    success: true,
    version: { major_number: RPC_COMPAT_VERSION.major, minor_number: RPC_COMPAT_VERSION.minor, name: `criu-ts ${packageVersion()}` },
  });
}

/** waitpid(pid) on one of our children (a tree restored on this connection); gives up if the client goes. */
async function handleWaitPid(conn: RpcConnection, req: CriuReq): Promise<void> {
  const pid = req.pid ?? 0;
  const ps = pageServers.get(pid);
  if (ps !== undefined) {
    pageServers.delete(pid);
    // The child is unref'd (it must not hold a worker whose client is gone): hold the loop while waiting for it.
    const hold = setInterval(() => undefined, 1 << 30);
    try {
      conn.send({ type: 'WAIT_PID', success: true, status: await ps });
    } finally {
      clearInterval(hold);
    }
    return;
  }
  try {
    for (;;) {
      const st = waitPid(pid, WNOHANG);
      if (st !== null && (st.exited || st.signaled)) {
        conn.send({ type: 'WAIT_PID', success: true, status: st.raw });
        return;
      }
      if ((pollFd(conn.fd, 0, 0) & POLLHUP) !== 0) return; // nobody left to tell
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch (e) {
    conn.send(failure('WAIT_PID', e));
  }
}

export async function handleRequest(conn: RpcConnection, req: CriuReq): Promise<void> {
  switch (req.type) {
    case 'DUMP': return handleDump(conn, req);
    case 'RESTORE': return handleRestore(conn, req);
    case 'CHECK': return handleCheck(conn, req);
    case 'FEATURE_CHECK': return handleFeatureCheck(conn, req);
    case 'VERSION': return handleVersion(conn);
    case 'WAIT_PID': return handleWaitPid(conn, req);
    case 'PRE_DUMP': return handlePreDump(conn, req, 'PRE_DUMP');
    case 'SINGLE_PRE_DUMP': return handlePreDump(conn, req, 'SINGLE_PRE_DUMP');
    case 'PAGE_SERVER':
    case 'PAGE_SERVER_CHLD':
      return handlePageServer(conn, req, req.type);
    case 'CPUINFO_DUMP':
    case 'CPUINFO_CHECK':
      return handleCpuinfo(conn, req, req.type);
    default: {
      // NOTIFY out of turn, EMPTY or a type we do not know: CRIU's "Invalid req" answer.
      const e = new CriuTsError('EUSAGE', `invalid request: ${typeName(req.type)}`, { type: req.type, errno: EBADRQC });
      log.error(e.message);
      conn.send(failure('EMPTY', e));
    }
  }
}

/** For a request that could not even be decoded. */
export function sendDecodeError(conn: RpcConnection, e: unknown): void {
  conn.send(failure('EMPTY', new CriuTsError('EUSAGE', describeError(e), { errno: EBADRQC }, e)));
}
