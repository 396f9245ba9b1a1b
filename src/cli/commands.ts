/**
 * What each criu-ts command does with parsed options: a thin layer over the
 * public API (src/api). Output follows CRIU: messages on stdout, errors on
 * stderr as one line. A command returns the process exit status.
 */
import { childProcess } from '../builtins.js';
import { existsSync, statSync } from 'node:fs';
import { createFileExclusive } from '../sys/index.js';
import { constants } from 'node:os';
import type { ActionNotify, CommonOptions, DumpOptions, DumpStats, RestoreOptions, RestoreStats } from '../api/options.js';
// dump and restore are imported on use: `check`, `--help` and `-V` must work even where they cannot load.
import { BASIC_FEATURES, EXPERIMENTAL_FEATURES, EXTRA_FEATURES, FEATURE_NAMES, check } from '../api/check.js';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { actionScriptNotifier } from './action-scripts.js';
import { writeStdout } from './stdout.js';
import type { CliOptions } from './cli-options.js';
import type { CommandName } from './option-table.js';

const log = logger('criu-ts');

/** Wraps an error raised by the API so main() can tell it from the CLI's own (prefix differs). */
export class ApiFailure {
  constructor(readonly error: unknown) {}
}

async function api<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new ApiFailure(e);
  }
}

function out(line: string): void {
  writeStdout(`${line}\n`);
}

export async function runCommand(command: CommandName, action: string | undefined, o: CliOptions): Promise<number> {
  switch (command) {
    case 'dump': return runDump(o);
    case 'pre-dump': return runDump(o, true);
    case 'dedup': {
      requireImagesDir(o.imagesDir);
      const { dedup } = await import('../api/dedup.js');
      const r = await api(() => dedup({ imagesDir: o.imagesDir }));
      log.info(`dedup: ${r.bytesFreed} bytes freed in the parent images`);
      return 0;
    }
    case 'restore': return runRestore(o);
    case 'check': return runCheck(o);
    case 'service': {
      const { runService } = await import('../rpc/index.js');
      return runService({ address: o.address, daemon: o.restoreDetached, pidfile: o.pidfile, socketMode: o.socketMode, socketGroup: o.socketGroup });
    }
    case 'page-server': {
      requireImagesDir(o.imagesDir);
      const { runPageServer } = await import('../api/page-server.js');
      const r = await api(() => runPageServer({
        imagesDir: o.imagesDir, address: o.address ?? '0.0.0.0', port: o.port ?? 0,
        daemon: o.restoreDetached, pidfile: o.pidfile, statusFd: o.statusFd,
        prevImagesDir: o.prevImagesDir, autoDedup: o.autoDedup, lazyPages: o.lazyPages,
        onListening: (port) => { if (o.port === 0 || o.port === undefined) out(`page-server: listening on port ${port}`); },
      }));
      log.info(`page server: ${r.pagemaps} pagemap(s), ${r.pages} page(s) stored`);
      return 0;
    }
    case 'lazy-pages': {
      requireImagesDir(o.imagesDir);
      if (o.pageServer && (o.address === undefined || o.port === undefined || o.port === 0)) {
        throw new CriuTsError('EUSAGE', 'lazy-pages --page-server needs --address and --port of the page server holding the pages', {});
      }
      const { lazyPages } = await import('../api/lazy-pages.js');
      const { signalReady } = await import('../api/page-server.js');
      const r = await api(() => lazyPages({
        imagesDir: o.imagesDir, workDir: o.workDir,
        ...(o.pageServer && o.address !== undefined && o.port !== undefined ? { pageServer: { address: o.address, port: o.port } } : {}),
        // CRIU's --status-fd: a zero byte once the socket listens (zdtm starts the restore on it).
        onListening: () => signalReady(o.statusFd),
        ...(o.skipChecksums ? { skipChecksums: true } : {}),
      }));
      log.info(`lazy-pages: ${r.tasks} task(s), ${r.faults} fault(s) served (${r.pagesOnFault} pages), ${r.pagesPushed} pages pushed, ${r.zeroPages} zero pages, ${r.checkedBytes} bytes checked against the dump's checksums`);
      return 0;
    }
    case 'cpuinfo': {
      const { cpuinfoDump, cpuinfoCheck } = await import('../api/cpuinfo.js');
      if (action === 'dump') await api(() => cpuinfoDump({ imagesDir: o.imagesDir }));
      else if (action === 'check') await api(() => cpuinfoCheck({ imagesDir: o.imagesDir, cpuCap: o.cpuCap }));
      else throw new CriuTsError('EUSAGE', `cpuinfo: expected dump or check${action === undefined ? '' : `, not ${action}`}`, { command, action });
      return 0;
    }
    default:
      throw new CriuTsError('EUNSUPPORTED', `the ${command} command is not supported yet`, { command });
  }
}

function common(o: CliOptions): CommonOptions {
  const c: CommonOptions = {
    imagesDir: o.imagesDir,
    workDir: o.workDir,
    shellJob: o.shellJob,
    extUnixSk: o.extUnixSk,
    tcpEstablished: o.tcpEstablished,
    tcpClose: o.tcpClose,
    skipInFlight: o.skipInFlight,
    ...(o.networkLock !== undefined ? { networkLock: o.networkLock } : {}),
    ...(o.emptyNetNs ? { emptyNetNs: true } : {}),
    ...(o.external.length > 0 ? { external: o.external } : {}),
    fileLocks: o.fileLocks,
    linkRemap: o.linkRemap,
  };
  if (o.ghostLimitBytes !== undefined) c.ghostLimit = o.ghostLimitBytes;
  if (o.cpuCap !== undefined) c.cpuCap = o.cpuCap;
  if (o.manageCgroups !== undefined) c.manageCgroups = o.manageCgroups;
  if (o.cgroupRoot.length > 0) c.cgroupRoot = o.cgroupRoot;
  if (o.cgroupYard !== undefined) c.cgroupYard = o.cgroupYard;
  if (o.root !== undefined) c.root = o.root;
  if (o.extMounts.length > 0) c.extMounts = o.extMounts;
  if (o.autoExtMounts) c.autoExtMounts = true;
  if (o.extSharing) c.extSharing = true;
  if (o.extMasters) c.extMasters = true;
  if (o.cgroupDumpController.length > 0) c.cgroupDumpController = o.cgroupDumpController;
  return c;
}

/** CRIU opens the images directory before anything else; so do we, to fail with its name. */
export function requireImagesDir(dir: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new CriuTsError('EUSAGE', `cannot open images directory ${dir}: no such directory`, { path: dir });
}

async function runDump(o: CliOptions, pre = false): Promise<number> {
  const pid = o.tree ?? 0;
  if (o.lazyPages && pre) throw new CriuTsError('EUSAGE', 'Cannot pre-dump with --lazy-pages', {});
  if (o.lazyPages && o.pageServer) throw new CriuTsError('EUSAGE', 'dump --lazy-pages serves the pages itself on --address/--port: it takes no --page-server', {});
  requireImagesDir(o.imagesDir);
  // Say plainly that the pid is wrong before any ptrace error can say it obscurely.
  if (!existsSync(`/proc/${pid}`)) throw new CriuTsError('ENOTASK', `no process with pid ${pid}`, { pid });
  const opts: DumpOptions = { ...common(o), pid };
  if (o.finalState === 'running') opts.leaveRunning = true;
  if (o.finalState === 'stopped') opts.leaveStopped = true;
  if (o.freezeCgroup !== undefined) opts.freezeCgroup = o.freezeCgroup;
  if (o.timeoutSec !== undefined) opts.timeoutSec = o.timeoutSec;
  if (o.prevImagesDir !== undefined) opts.prevImagesDir = o.prevImagesDir;
  if (o.trackMem) opts.trackMem = true;
  if (o.pageServer) {
    if (o.address === undefined || o.port === undefined || o.port === 0) {
      throw new CriuTsError('EUSAGE', '--page-server needs --address and --port of a running page server', {});
    }
    opts.pageServer = { address: o.address, port: o.port };
  }
  if (o.lazyPages) {
    const { signalReady } = await import('../api/page-server.js');
    // As CRIU: the pages are served on --address (default: every address) and --port (0: any free one, logged) once the images are written.
    opts.lazyPages = {
      address: o.address ?? '0.0.0.0', port: o.port ?? 0,
      onListening: (port) => {
        log.info(`lazy pages: the page server listens on port ${port}`);
        signalReady(o.statusFd);
      },
    };
  }
  if (o.actionScripts.length > 0) opts.notify = scriptsFor(o);
  const result = pre
    ? await api(async () => (await import('../api/pre-dump.js')).preDump(opts))
    : await api(async () => (await import('../api/dump.js')).dump(opts));
  log.info(`${pre ? 'Pre-dumped' : 'Dumped'} ${result.pids.length} task(s): ${result.pids.join(' ')}`);
  if (o.displayStats) printDumpStats(result.stats);
  if (o.autoDedup && o.prevImagesDir !== undefined) {
    const { dedup } = await import('../api/dedup.js');
    const r = await api(() => dedup({ imagesDir: o.imagesDir }));
    log.info(`auto-dedup: ${r.bytesFreed} bytes freed in the parent images`);
  }
  return 0;
}

/** CRIU's "--display-stats" block for a dump (criu/stats.c), field for field. */
export function formatDumpStats(s: DumpStats): string[] {
  const pages = (label: string, n: number): string => `${label}: ${n} (0x${n.toString(16)})`;
  return [
    'Displaying dump stats:',
    `Freezing time: ${s.freezingTimeUs} us`,
    `Frozen time: ${s.frozenTimeUs} us`,
    `Memory dump time: ${s.memdumpTimeUs} us`,
    `Memory write time: ${s.memwriteTimeUs} us`,
    pages('Memory pages scanned', s.pagesScanned),
    pages('Memory pages skipped from parent', s.pagesSkippedParent),
    pages('Memory pages written', s.pagesWritten),
    pages('Lazy memory pages', s.pagesLazy),
  ];
}

function printDumpStats(s: DumpStats): void {
  for (const line of formatDumpStats(s)) out(line);
}

async function runRestore(o: CliOptions): Promise<number> {
  requireImagesDir(o.imagesDir);
  if (o.tree !== undefined) log.warn('Using -t with restore is obsolete; the tree comes from the images');
  // CRIU creates the pidfile with O_EXCL: refuse before restoring anything rather than after.
  if (o.pidfile !== undefined && existsSync(o.pidfile)) {
    throw new CriuTsError('EUSAGE', `pidfile ${o.pidfile} already exists`, { path: o.pidfile });
  }
  const opts: RestoreOptions = { ...common(o) };
  if (o.skipChecksums) opts.skipChecksums = true;
  if (o.verify !== undefined) opts.verify = o.verify;
  if (o.lazyPages) opts.lazyPages = true;
  if (o.inheritFd.length > 0) opts.inheritFd = o.inheritFd;
  if (o.restoreSibling) opts.restoreSibling = true;
  if (o.finalState === 'stopped') opts.leaveStopped = true;
  if (o.joinNs.length > 0) opts.joinNs = o.joinNs;
  if (o.vethPairs.length > 0) opts.vethPairs = o.vethPairs;
  if (o.actionScripts.length > 0) opts.notify = scriptsFor(o);
  const { restore, waitRestored } = await api(() => import('../api/restore.js'));
  const result = await api(() => restore(opts));
  if (o.pidfile !== undefined) writePidfile(o.pidfile, result.pid);
  if (o.displayStats) for (const line of formatRestoreStats(result.stats)) out(line);
  if (o.restoreDetached) return 0;
  if (o.execCmd !== undefined) return runExecCmd(o.execCmd, o.workDir);
  // Like a shell: the root's exit code, or 128+signal when a signal ended it.
  return api(() => waitRestored(result.pid));
}

function scriptsFor(o: CliOptions): ActionNotify {
  const ctx = { scripts: o.actionScripts, imagesDir: o.imagesDir, cwd: o.workDir };
  return actionScriptNotifier(o.logFile === undefined || o.logFile === '-' ? ctx : { ...ctx, logFile: o.logFile });
}

/**
 * --exec-cmd: CRIU execs the command in place of itself once the tree runs,
 * so its exit status is criu's. Node cannot exec, so the command runs as our
 * child with our stdio and we leave with its status (128+N when signal N
 * ended it); the restored root stays our child until then, then goes to the
 * reaper as it would when criu's process ends. It starts in the work dir,
 * where criu has moved by then.
 */
export function runExecCmd(argv: readonly string[], cwd: string): Promise<number> {
  const [file, ...args] = argv;
  return new Promise((resolve) => {
    const child = childProcess().spawn(file ?? '', args, { cwd, stdio: 'inherit' });
    child.on('error', (e) => {
      log.error(`Failed to exec command ${file ?? ''}: ${e.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128 + constants.signals[signal])));
  });
}

/** CRIU's "--display-stats" block for a restore. */
export function formatRestoreStats(s: RestoreStats): string[] {
  const pages = (label: string, n: number): string => `${label}: ${n} (0x${n.toString(16)})`;
  return [
    'Displaying restore stats:',
    pages('Pages compared', s.pagesCompared),
    pages('Pages skipped COW', s.pagesSkippedCow),
    pages('Pages restored', s.pagesRestored),
    `Restore time: ${s.restoreTimeUs} us`,
    `Forking time: ${s.forkingTimeUs} us`,
  ];
}

/** A plain decimal pid, no newline, mode 0600, never over an existing file (CRIU's write_pidfile). */
export function writePidfile(path: string, pid: number): void {
  try {
    // Complete when it appears, and never over an existing name (a planted link included).
    createFileExclusive(path, Buffer.from(String(pid)), 0o600);
  } catch (e) {
    throw new CriuTsError('EUSAGE', `cannot write pidfile ${path}: ${(e as Error).message}`, { path }, e);
  }
}

/** Feature names wrapped at 80 columns, space separated, like CRIU's "--feature list". */
export function formatFeatureList(names: readonly string[], width = 80): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const n of names) {
    if (cur !== '' && cur.length + 1 + n.length > width) {
      lines.push(cur);
      cur = n;
    } else cur = cur === '' ? n : `${cur} ${n}`;
  }
  if (cur !== '') lines.push(cur);
  return lines;
}

async function runCheck(o: CliOptions): Promise<number> {
  if (o.feature === 'list') {
    for (const line of formatFeatureList(FEATURE_NAMES)) out(line);
    return 0;
  }
  if (o.feature !== undefined) {
    const name = o.feature;
    if (!FEATURE_NAMES.includes(name)) throw new CriuTsError('EUSAGE', `unknown feature ${name} (try --feature list)`, { feature: name });
    const r = await api(() => check({ feature: name }));
    const f = r.features[name];
    if (f?.ok === true) {
      out(`${name} is supported`);
      return 0;
    }
    throw new CriuTsError('EUNSUPPORTED', `${name} is not supported${f?.reason === undefined ? '' : `: ${f.reason}`}`, { feature: name });
  }
  const r = await api(() => check({ extra: o.checkExtra, experimental: o.checkExperimental }));
  if (!r.ok) {
    const missing = BASIC_FEATURES.filter((n) => r.features[n]?.ok !== true)
      .map((n) => `${n} (${r.features[n]?.reason ?? 'unknown'})`);
    throw new CriuTsError('EUNSUPPORTED', `Does not look good: missing ${missing.join(', ')}`, { missing });
  }
  const optional = [...(o.checkExtra ? EXTRA_FEATURES : []), ...(o.checkExperimental ? EXPERIMENTAL_FEATURES : [])];
  let missing = 0;
  for (const n of optional) {
    const f = r.features[n];
    if (f?.ok === true) continue;
    missing++;
    log.warn(`${n} is not supported${f?.reason === undefined ? '' : `: ${f.reason}`}`);
  }
  if (missing === 0) {
    out('Looks good.');
    return 0;
  }
  out('Looks good but some kernel features are missing\nwhich, depending on your process tree, may cause\ndump or restore failure.');
  return 1;
}
