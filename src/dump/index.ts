/**
 * Dump orchestration: stop the tree, collect every task's state through the
 * kinds and the infect library, write CRIU images, then kill the tree, leave
 * it stopped or let it run. Any failure before the images are complete
 * resumes every task exactly as it was.
 */
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import type {
  CoreEntry, PstreeEntry, InventoryEntry, TaskKobjIdsEntry, FsEntry, MmEntry, StatsEntry, FdinfoEntry,
} from '../images/messages.js';
import { CriuTsError, isCriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { parseStat, parseStatus, readComm, readCwd, readRoot, readExe, readAuxv, readNsIds } from '../proc/index.js';
import { NS_KINDS, NS_ID_FIELD } from '../images/index.js';
import { hasOwnNamespace, refuseForeignNamespaces } from './namespaces.js';
import { ACCESS, dirAccessibleBy, kcmp, KCMP } from '../sys/index.js';
import type { DumpTreeOptions, DumpResult, DumpStats } from './options.js';
import type { DumpActionPoint } from '../action-points.js';
import type { CallerCreds } from '../caller.js';
import { DumpSession } from './context.js';
import { checkOwnNamespaces, checkTraceable } from './authorize.js';
import { walkTree } from '../proc/children.js';
import { CHECKSUMS_IMAGE, beginChecksums, checksumEntries, endChecksums } from '../images/index.js';
import { seizeTree, releaseTree, type TaskNode } from './tree.js';
import { dumpGpRegs, dumpFpRegs } from './regs.js';
import { dumpThreadCore, type ThreadAnswers } from './task-state.js';
import { askTree, type TaskAsked } from './ask.js';
import type { Tracee } from '../infect/tracee.js';
import { dumpFds, dumpInFlight, socketFileForMapping } from './files.js';
import { dumpMemory } from '../kinds/memory/dump.js';
import { IncrementalMemory } from '../kinds/memory/incremental.js';
import { PageServerClient } from '../kinds/memory/page-server-client.js';
import {
  regEntryForPath, dumpUnlinked, SeccompCollector, memfdFileForMapping, LOCK_METHOD, RESOURCE_KINDS, handledNamespaces,
  type DumpTreeView,
} from '../kinds/index.js';
import { makeProgress } from '../progress.js';
import { faultPoint } from '../fault.js';
import { TreePids, type TaskPids } from './pids.js';
import { Guardian } from '../infect/guardian.js';

const log = logger('dump');
const DELETED = ' (deleted)';

/** task_state values in core images (CRIU's compel numbering). */
export const TASK_ALIVE = 1;
export const TASK_DEAD = 2;
export const TASK_STOPPED = 3;

function usToNow(t0: bigint): number {
  return Number((process.hrtime.bigint() - t0) / 1000n);
}

function checkTarget(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0) throw new CriuTsError('EUSAGE', `bad pid ${pid}`, { pid });
  if (!existsSync(`/proc/${pid}`)) throw new CriuTsError('ENOTASK', `no process with pid ${pid}`, { pid });
  if (pid === process.pid) throw new CriuTsError('EUSAGE', 'cannot dump criu-ts itself', { pid });
}

export function checkImagesDir(dir: string, caller: CallerCreds | undefined): void {
  try {
    if (caller !== undefined) {
      // An unprivileged caller's images go only where it could write them itself.
      if (!dirAccessibleBy(caller, dir, ACCESS.W_OK | ACCESS.X_OK)) throw new Error(`uid ${caller.uid} may not write there`);
    } else if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    accessSync(dir, constants.W_OK);
  } catch (e) {
    if (caller !== undefined) throw new CriuTsError('EPERM', `cannot write images to ${dir}: ${(e as Error).message}`, { dir, errno: 1 }, e);
    throw new CriuTsError('EUSAGE', `cannot write images to ${dir}: ${(e as Error).message}`, { dir }, e);
  }
}

/**
 * Object ids shared between tasks (mm, files table, fs, sighand), numbered
 * per kind as CRIU does (the dumper's own objects are 1). kcmp orders
 * kernel objects consistently, so each kind's representatives are kept
 * sorted and a task's object is found with a binary search: O(log n) kcmp
 * calls per task instead of one per task already seen.
 */
class KobjIds {
  private readonly byType = new Map<number, { next: number; reps: { pid: number; id: number }[] }>();
  idOf(type: number, pid: number): number {
    let t = this.byType.get(type);
    if (t === undefined) {
      t = { next: 1, reps: [] };
      this.byType.set(type, t);
    }
    let lo = 0;
    let hi = t.reps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const rep = t.reps[mid] as { pid: number; id: number };
      let order: number;
      try {
        order = kcmp(rep.pid, pid, type);
      } catch {
        return t.next++; // cannot compare (the task is going): an object of its own
      }
      if (order === 0) return rep.id;
      if (order === 3) return this.linear(t, type, pid); // no ordering from this kernel
      // 1: the representative's object sorts before this task's; 2: after
      if (order === 1) lo = mid + 1;
      else hi = mid;
    }
    const id = t.next++;
    t.reps.splice(lo, 0, { pid, id });
    return id;
  }

  private linear(t: { next: number; reps: { pid: number; id: number }[] }, type: number, pid: number): number {
    for (const rep of t.reps) {
      try {
        if (kcmp(rep.pid, pid, type) === 0) return rep.id;
      } catch {
        // gone: not this one
      }
    }
    const id = t.next++;
    t.reps.push({ pid, id });
    return id;
  }
}

class NsIds {
  private next = 1;
  private readonly ids = new Map<string, number>();
  idOf(kind: string, ino: number): number {
    const k = `${kind}:${ino}`;
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.next++;
      this.ids.set(k, id);
    }
    return id;
  }
}

/**
 * Dump the tree; every file written into the images dir meanwhile is
 * hashed as it is written, and the digests end the dump as
 * criu-ts-checksums (docs/security.md).
 */
export async function dumpTree(opts: DumpTreeOptions): Promise<DumpResult> {
  beginChecksums(opts.dir);
  try {
    return await dumpTreeHashed(opts);
  } finally {
    const c = endChecksums(opts.dir);
    if (c !== undefined) log.info(`checksums: ${c.files.size} files, ${(Number(c.bytes) / 2 ** 20).toFixed(1)} MiB hashed in ${(Number(c.hashNs) / 1e6).toFixed(1)} ms`);
  }
}

async function dumpTreeHashed(opts: DumpTreeOptions): Promise<DumpResult> {
  const { pid, dir } = opts;
  checkTarget(pid);
  checkImagesDir(dir, opts.asCaller);
  const progress = makeProgress('dump', opts.progress);
  const t0 = process.hrtime.bigint();
  // CRIU's action-script points (RPC notify_scripts) at their moments.
  const notify = async (point: DumpActionPoint): Promise<void> => {
    await opts.notify({ point, rootPid: pid });
  };
  // A task in namespaces of its own (of a type no kind re-creates) is refused before it is even seized.
  const handledNs = handledNamespaces();
  refuseForeignNamespaces(pid, handledNs);
  // For an unprivileged caller: every task it could not ptrace itself is refused before anything is seized.
  checkTraceable(walkTree(pid), opts.asCaller);
  await notify('pre-dump');
  // Before any task is touched: a page server that does not answer fails the dump here.
  const pageServer = opts.pageServer ? PageServerClient.connect(opts.pageServer.address, opts.pageServer.port) : undefined;
  // The parent link and record are checked before anything is stopped.
  let inc: IncrementalMemory;
  try {
    inc = new IncrementalMemory({ dir, prevDir: opts.prevDir, keepTracking: opts.trackMem && opts.after === 'resume', remote: pageServer !== undefined });
  } catch (e) {
    pageServer?.abort();
    throw e;
  }
  // Before any task is touched: what undoes our traces if we die.
  const guard = Guardian.start();
  let tree: ReturnType<typeof seizeTree>;
  try {
    tree = seizeTree(pid, opts.timeoutMs, opts.freezeCgroup);
  } catch (e) {
    guard?.done();
    pageServer?.abort();
    throw e;
  }
  const ctx = new DumpSession(dir, opts.kinds);
  ctx.dumpInFlight = (localFd, what, holderPid) => dumpInFlight(ctx, localFd, what, holderPid);
  let networkLocked = false;
  const freezingTime = usToNow(t0);
  const stats: DumpStats = {
    freezingTimeUs: freezingTime, frozenTimeUs: 0, memdumpTimeUs: 0, memwriteTimeUs: 0,
    pagesScanned: 0, pagesSkippedParent: 0, pagesWritten: 0, pagesZero: 0,
  };
  try {
    faultPoint('dump.seized');
    // And again once seized: credentials cannot change any more, and the tree is the one we hold.
    checkTraceable(tree.tasks.map((t) => t.pid), opts.asCaller);
    checkOwnNamespaces(tree.tasks.filter((t) => !t.zombie).map((t) => t.pid), opts.asCaller);
    await notify('network-lock');
    networkLocked = true;
    for (const node of tree.tasks) if (!node.zombie) refuseForeignNamespaces(node.pid, handledNs);
    const kobj = new KobjIds();
    const nsIds = new NsIds();
    ctx.nsIdOf = (type, ino) => nsIds.idOf(type, ino);
    // As CRIU: the dumper's own ids come first and are the inventory's
    // root_ids; a task whose namespace ids differ from them was in a
    // namespace of its own.
    const rootIds = taskIds(process.pid, kobj, nsIds);
    // Every pid the images hold is the one the tree sees (its own pid namespace's).
    const treePids = TreePids.read(tree);
    ctx.pidView = (p) => treePids.vpid(p);
    // The resource kinds see the whole held tree first: they refuse what they cannot save before any task is dumped.
    const treeView: DumpTreeView = {
      rootPid: pid,
      rootIds,
      tasks: tree.tasks.map((t) => ({
        pid: t.pid, ppid: t.ppid, nsPid: treePids.of(t.pid).nsPid, tids: t.threads.map((th) => th.tid), zombie: t.zombie,
      })),
    };
    for (const k of RESOURCE_KINDS) k.dumpTree?.(treeView, ctx);
    if (treePids.ownNamespace && (opts.prevDir !== undefined || opts.trackMem || opts.pageServer)) {
      throw new CriuTsError('EUNSUPPORTED', `task ${pid} is the init of a pid namespace: incremental dumps and page servers (--prev-images-dir, --track-mem, --page-server) of such a tree are not supported yet`, { pid });
    }
    const shmemDone = new Set<bigint>();
    const fileIdByPath = new Map<string, number>();
    const fileId = (path: string, flags: number): number => {
      const key = `${flags}:${path}`;
      let id = fileIdByPath.get(key);
      if (id === undefined) {
        // Every task shares the root's mount namespace (a nested one is refused).
        id = ctx.addFile((i) => regEntryForPath(i, path, flags, pid));
        fileIdByPath.set(key, id);
      }
      return id;
    };
    const ghostIds = new Map<string, number>();
    const ghostFileId = (path: string, flags: number, openPath: string, inode: bigint): number => {
      const key = `${flags}:${inode}`;
      let id = ghostIds.get(key);
      if (id === undefined) {
        id = ctx.addFile((i) => regEntryForPath(i, path, flags, pid));
        dumpUnlinked(ctx, id, path, openPath, `mapping of ${path}`);
        ghostIds.set(key, id);
      }
      return id;
    };
    const seccomp = new SeccompCollector();
    const pstree: PstreeEntry[] = [];
    const fdinfoWritten = new Set<number>();
    const tm = process.hrtime.bigint();
    const asked = askTree(tree.tasks.filter((n) => !n.zombie));
    let done = 0;
    for (const node of tree.tasks) {
      progress.tasks(done, tree.tasks.length);
      const vp = treePids.of(node.pid);
      const vppid = node.ppid === 0 || node === tree.root ? 0 : treePids.of(node.ppid).vpid;
      if (node.zombie) {
        // CRIU's form: a core with only the task core (state "dead", the
        // wait status as exit_code) and no other per-task image.
        pstree.push({ pid: vp.vpid, ppid: vppid, pgid: vp.vpgid, sid: vp.vsid, threads: [0] });
        const core: CoreEntry = {
          mtype: 'X86_64',
          tc: { task_state: TASK_DEAD, exit_code: node.exitCode, personality: 0, flags: 0, blk_sigset: 0n, comm: zombieComm(node.pid) },
        };
        ctx.writeImage(`core-${vp.vpid}.img`, 'CORE', [core]);
        done++;
        continue;
      }
      const ids = taskIds(node.pid, kobj, nsIds);
      pstree.push({ pid: vp.vpid, ppid: vppid, pgid: vp.vpgid, sid: vp.vsid, threads: [...vp.vtids] });
      dumpTask(node, vp, asked.get(node) as TaskAsked, ctx, ids, fileId, ghostFileId, fdinfoWritten, {
        shmemDone,
        onBytes: (n) => progress.bytes(n),
        stats,
        seccomp,
        inc,
        treePids: tree.tasks.map((t) => t.pid),
        pageServer,
      });
      done++;
    }
    progress.tasks(done, tree.tasks.length);
    stats.memdumpTimeUs = usToNow(tm);
    ctx.writeImage('files.img', 'FILES', ctx.files);
    ctx.writeImage('seccomp.img', 'SECCOMP', [seccomp.entry()]);
    ctx.writeImage('pstree.img', 'PSTREE', pstree);
    const inv: InventoryEntry = {
      img_version: 2,
      fdinfo_per_id: true,
      ns_per_id: true,
      lsmtype: 'NO_LSM',
      network_lock_method: LOCK_METHOD[opts.kinds.networkLock],
      // As CRIU: the restore must be told --tcp-close too.
      ...(opts.kinds.tcpClose ? { tcp_close: true } : {}),
      dump_criu_run_id: ctx.runId,
      root_ids: rootIds,
      ...ctx.inventoryFields,
    };
    ctx.writeImage('inventory.img', 'INVENTORY', [inv]);
    // The kinds' own images (queued data, memfd pages) complete the dump.
    ctx.finishImages();
    stats.frozenTimeUs = usToNow(t0);
    ctx.writeImage('stats-dump', 'STATS', [statsEntry(stats, ctx.sharedPages)]);
    inc.finish();
    // Every page is stored on the page server's side before the tree may go.
    pageServer?.close();
    // Last: the size and SHA-256 of every file above, for the restore to check.
    ctx.writeImage(CHECKSUMS_IMAGE, 'CRIU_TS_CHECKSUMS', checksumEntries(dir));
    faultPoint('dump.images');
    // A refused post-dump keeps the tree alive, as CRIU does.
    await notify('post-dump');
  } catch (err) {
    progress.done();
    // A failure of ours (e.g. ENOSPC from a write) is said with the images dir it concerns.
    const e = isCriuTsError(err) ? err : new CriuTsError('EDUMP', `writing images to ${dir}: ${(err as Error).message}`, { dir }, err);
    // The caller reports the error itself (the CLI in one line, and in the log file): here it is only the step.
    log.info(`dump failed, resuming the tree: ${e.message}`);
    inc.abort();
    pageServer?.abort();
    releaseTree(tree.tasks, 'resume');
    ctx.exit(true);
    guard?.done();
    if (networkLocked) await notify('network-unlock').catch(() => undefined);
    throw e;
  }
  progress.done();
  releaseTree(tree.tasks, opts.after);
  guard?.done();
  ctx.exit(opts.after !== 'kill');
  if (opts.after === 'resume') await notify('network-unlock');
  log.info(`dump of ${pid} finished: ${tree.tasks.length} task(s), ${stats.pagesWritten} pages`);
  return { pids: tree.tasks.map((t) => t.pid), stats };
}

/**
 * stats-dump as CRIU fills it: pages_written counts the tasks' private
 * pages, shpages_written the pages of shared objects (shared anonymous
 * memory, memfds), so that together they are every page in pages-*.img
 * (CRIU's test suite checks exactly that).
 */
function statsEntry(stats: DumpStats, sharedPages: number): StatsEntry {
  return {
    dump: {
      freezing_time: stats.freezingTimeUs,
      frozen_time: stats.frozenTimeUs,
      memdump_time: stats.memdumpTimeUs,
      memwrite_time: stats.memwriteTimeUs,
      pages_scanned: BigInt(stats.pagesScanned),
      pages_skipped_parent: BigInt(stats.pagesSkippedParent),
      pages_written: BigInt(stats.pagesWritten),
      pages_lazy: 0n,
      shpages_scanned: BigInt(sharedPages),
      shpages_skipped_parent: 0n,
      shpages_written: BigInt(sharedPages),
    },
  };
}

function zombieComm(pid: number): string {
  try {
    return readComm(pid);
  } catch {
    return '';
  }
}

function taskIds(pid: number, kobj: KobjIds, nsIds: NsIds): TaskKobjIdsEntry {
  const ns = readNsIds(pid);
  const ids: TaskKobjIdsEntry = {
    vm_id: kobj.idOf(KCMP.VM, pid),
    files_id: kobj.idOf(KCMP.FILES, pid),
    fs_id: kobj.idOf(KCMP.FS, pid),
    sighand_id: kobj.idOf(KCMP.SIGHAND, pid),
  };
  for (const kind of NS_KINDS) {
    const ino = ns[kind];
    if (ino) (ids as unknown as Record<string, number>)[NS_ID_FIELD[kind]] = nsIds.idOf(kind, ino);
  }
  return ids;
}

interface TaskDumpShared {
  shmemDone: Set<bigint>;
  onBytes(n: number): void;
  stats: DumpStats;
  seccomp: SeccompCollector;
  inc: IncrementalMemory;
  treePids: number[];
  pageServer: PageServerClient | undefined;
}

function dumpTask(
  node: TaskNode, vp: TaskPids, asked: TaskAsked, ctx: DumpSession, ids: TaskKobjIdsEntry,
  fileId: (path: string, flags: number) => number,
  ghostFileId: (path: string, flags: number, openPath: string, inode: bigint) => number, fdinfoWritten: Set<number>, shared: TaskDumpShared,
): void {
  const pid = node.pid;
  const main = node.threads[0] as Tracee;
  log.info(`dumping task ${pid} (${node.threads.length} thread(s))`);
  const range = asked.range;
  // Per thread: registers, FPU, thread core. /proc status is read once per thread.
  const mainStatus = asked.mainStatus;
  const cores: { tid: number; core: CoreEntry; vtid: number; thread: Tracee; tidAddress: bigint }[] = [];
  node.threads.forEach((t, i) => {
    const status = t === main ? mainStatus : parseStatus(pid, t.tid);
    const th = asked.threads.get(t) as ThreadAnswers;
    const core: CoreEntry = {
      mtype: 'X86_64',
      // thread_info (registers) is filled just before the core is written (below)
      thread_core: dumpThreadCore(t, pid, status, th),
    };
    if (core.thread_core) shared.seccomp.dumpThread(t.tid, status.seccomp, core.thread_core);
    if (t === main) {
      const tc = asked.tc;
      // A timer aimed at one thread names it as the task sees it.
      for (const pt of tc.timers?.posix ?? []) {
        if (pt.notify_thread_id !== undefined) pt.notify_thread_id = ctx.vpid(pt.notify_thread_id) ?? pt.notify_thread_id;
      }
      if (t.wasStopped) {
        tc.task_state = TASK_STOPPED;
        tc.stop_signo = t.stopSignal;
      }
      core.tc = tc;
    }
    cores.push({ tid: t.tid, core, vtid: vp.vtids[i] ?? t.tid, thread: t, tidAddress: th.tidAddress });
  });
  for (const k of RESOURCE_KINDS) k.dumpTask?.({ pid, main, cores, ids }, ctx);
  // Images are named by the pids the tree sees. The FPU state is read one
  // thread at a time as its core is written and dropped after: held for
  // all threads at once, the XSAVE areas as JS values were most of a
  // 1000-thread dump's heap. (No kind looks at fpregs; the threads stay
  // stopped, and injected calls leave their FPU state as it was.)
  for (const { vtid, core, thread, tidAddress } of cores) {
    core.thread_info = { clear_tid_addr: tidAddress, gpregs: dumpGpRegs(thread), fpregs: dumpFpRegs(thread) };
    ctx.writeImage(`core-${vtid}.img`, 'CORE', [core]);
    delete core.thread_info;
  }
  faultPoint('dump.task');
  // Memory (brk, dumpable and THP were asked in askTree).
  const { brk, dumpable, thpDisabled } = asked;
  const exclude = [range];
  const tmw = process.hrtime.bigint();
  const track = shared.inc.begin(pid, main, shared.treePids);
  const mem = dumpMemory({
    pid, dir: ctx.dir, fileId, ghostFileId,
    memfdFileId: (start, end, path) => memfdFileForMapping(ctx, pid, start, end, path),
    socketFileId: (start, end, path) => socketFileForMapping(ctx, pid, start, end, path, ids.net_ns_id),
    shmemDone: shared.shmemDone, nextPagesId: () => ctx.nextPagesId(), onBytes: shared.onBytes, exclude,
    ...(shared.pageServer ? { pageServer: shared.pageServer } : {}),
    // Its SysV segments go with its ipc namespace (the ipc kind) only when that namespace is not ours.
    sysvShm: hasOwnNamespace(pid, 'ipc'),
    ...(track ? { track } : {}),
  });
  // Closes the tracker (final dump) before the fds are dumped, or protects what is new.
  shared.inc.end(pid, mem);
  shared.stats.memwriteTimeUs += usToNow(tmw);
  shared.stats.pagesScanned += mem.pagesScanned;
  shared.stats.pagesWritten += mem.pagesWritten;
  shared.stats.pagesSkippedParent += mem.pagesSkippedParent;
  const stat = parseStat(pid);
  const auxv = readAuxv(pid).flatMap(([k, v]) => [k, v]);
  const mm: MmEntry = {
    mm_start_code: stat.startCode,
    mm_end_code: stat.endCode,
    mm_start_data: stat.startData,
    mm_end_data: stat.endData,
    mm_start_stack: stat.startStack,
    mm_start_brk: stat.startBrk,
    mm_brk: brk,
    mm_arg_start: stat.argStart,
    mm_arg_end: stat.argEnd,
    mm_env_start: stat.envStart,
    mm_env_end: stat.envEnd,
    exe_file_id: fileId(readExe(pid), 0),
    mm_saved_auxv: auxv,
    vmas: mem.vmas,
    ...(mem.aios.length > 0 ? { aios: mem.aios } : {}),
    dumpable,
    thp_disabled: thpDisabled,
  };
  ctx.writeImage(`mm-${vp.vpid}.img`, 'MM', [mm]);
  // With a page server, it writes the pagemaps and pages on its side.
  if (!shared.pageServer) ctx.writeImage(`pagemap-${vp.vpid}.img`, 'PAGEMAP', [{ pages_id: mem.pagesId }, ...mem.pagemap]);
  for (const sh of mem.shmem) {
    if (!shared.pageServer) ctx.writeImage(`pagemap-shmem-${sh.shmid}.img`, 'PAGEMAP', [{ pages_id: sh.pagesId }, ...sh.entries]);
    for (const e of sh.entries) ctx.countSharedPages(Number(e.nr_pages ?? 0n));
  }
  faultPoint('dump.memory');
  // Files.
  if (!fdinfoWritten.has(ids.files_id)) {
    fdinfoWritten.add(ids.files_id);
    const fds: FdinfoEntry[] = dumpFds(pid, ctx, ids.net_ns_id);
    ctx.writeImage(`fdinfo-${ids.files_id}.img`, 'FDINFO', fds);
  }
  const status = mainStatus ?? parseStatus(pid);
  const dirId = (path: string, link: string): number => {
    if (!path.endsWith(DELETED)) return fileId(path, 0);
    const real = path.slice(0, -DELETED.length);
    const id = ctx.addFile((i) => regEntryForPath(i, real, 0, pid));
    dumpUnlinked(ctx, id, real, `/proc/${pid}/${link}`, `task ${pid} ${link}`);
    return id;
  };
  const fs: FsEntry = { cwd_id: dirId(readCwd(pid), 'cwd'), root_id: dirId(readRoot(pid), 'root'), umask: status.umask };
  ctx.writeImage(`fs-${vp.vpid}.img`, 'FS', [fs]);
  ctx.writeImage(`ids-${vp.vpid}.img`, 'IDS', [ids]);
  faultPoint('dump.files');
}
