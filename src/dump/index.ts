/**
 * Dump orchestration: stop the tree, collect every task's state through the
 * kinds and the infect library, write CRIU images, then kill the tree, leave
 * it stopped or let it run. Any failure before the images are complete
 * resumes every task exactly as it was.
 */
import { trimIfGrown } from '../heap.js';
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import type { PstreeEntry, TaskKobjIdsEntry } from '../images/messages.js';
import { CriuTsError, isCriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { refuseForeignNamespaces } from './namespaces.js';
import { ACCESS, dirAccessibleBy, holdDir } from '../sys/index.js';
import type { DumpTreeOptions, DumpResult, DumpStats } from './options.js';
import type { DumpActionPoint } from '../action-points.js';
import type { CallerCreds } from '../caller.js';
import { DumpSession } from './context.js';
import { checkOwnNamespaces, checkTraceable } from './authorize.js';
import { walkTree } from '../proc/children.js';
import { beginChecksums, checksumEntries, endChecksums } from '../images/index.js';
import { checkTarget, seizeGuarded, releaseTree, usToNow } from './tree.js';
import { askTree, type TaskAsked } from './ask.js';
import { smapsAhead } from './smaps-ahead.js';
import { dumpInFlight } from './files.js';
import { PageServerClient } from '../kinds/memory/page-server-client.js';
import { RESOURCE_KINDS, addressSpace, handledNamespaces, type DumpTreeView } from '../kinds/index.js';
import { makeProgress } from '../progress.js';
import { faultPoint } from '../fault.js';
import { TreePids, nestedPids } from './pids.js';
import { KobjIds, NsIds, taskIds } from './ids.js';
import { TreeFiles, dumpTask, dumpZombie } from './task.js';
import { writeTreeImages } from './finish.js';
import { serveFrozenTree, type FrozenTask } from './lazy-serve.js';
import { mark } from '../timeline.js';

const log = logger('dump');

/**
 * 512 MiB of a task's pages: from there the kill at the end of the dump
 * frees its memory on our thread too (kill-tree.ts). Between the sizes
 * measured: 256 MiB gained nothing there, 1 GiB 20 ms of the reap.
 */
const BIG_MEMORY_PAGES = 131072;

/** The present pages the dump met so far: copied, left in the parent images, or left for the lazy pages. */
function presentPages(s: DumpStats): number {
  return s.pagesWritten + s.pagesSkippedParent + s.pagesLazy;
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
 * Dump the tree; every file written into the images dir meanwhile is
 * hashed as it is written, and the digests end the dump as
 * criu-ts-checksums (docs/security.md).
 */
export async function dumpTree(opts: DumpTreeOptions): Promise<DumpResult> {
  beginChecksums(opts.dir);
  // One fd on the images directory for every image written (not an open per file).
  const release = holdDir(opts.dir);
  try {
    return await dumpTreeHashed(opts);
  } finally {
    release();
    const c = endChecksums(opts.dir);
    if (c !== undefined) log.info(`checksums: ${c.files.size} files, ${(Number(c.bytes) / 2 ** 20).toFixed(1)} MiB hashed in ${(Number(c.hashNs) / 1e6).toFixed(1)} ms`);
  }
}

async function dumpTreeHashed(opts: DumpTreeOptions): Promise<DumpResult> {
  const { pid, dir } = opts;
  checkTarget(pid, 'dump');
  checkImagesDir(dir, opts.asCaller);
  const progress = makeProgress('dump', opts.progress);
  // CRIU's action-script points (RPC notify_scripts) at their moments.
  const notify = async (point: DumpActionPoint): Promise<void> => {
    await opts.notify({ point, rootPid: pid });
  };
  // A task in namespaces of its own (of a type no kind re-creates) is refused before it is even seized.
  const handledNs = handledNamespaces();
  refuseForeignNamespaces(pid, handledNs);
  // For an unprivileged caller: every task it could not ptrace itself is refused before anything is seized.
  // The walk is for an unprivileged caller only: root's dump walks the tree once, as it seizes it.
  if (opts.asCaller !== undefined) checkTraceable(walkTree(pid), opts.asCaller);
  await notify('pre-dump');
  // Before any task is touched: a page server that does not answer fails the dump here.
  const pageServer = opts.pageServer ? PageServerClient.connect(opts.pageServer.address, opts.pageServer.port) : undefined;
  const ctx = new DumpSession(dir, opts.kinds);
  ctx.dumpInFlight = (localFd, what, holderPid) => dumpInFlight(ctx, localFd, what, holderPid);
  if (pageServer) ctx.pageServer = pageServer;
  // What the address space builds on (the parent link and record) is checked before anything is stopped.
  const space = addressSpace();
  try {
    space.beginDump({
      prevDir: opts.prevDir, keepTracking: opts.trackMem && opts.after === 'resume', lazy: opts.lazyPages !== undefined,
      // A lazy migration's tree runs on if its daemon goes away: its trackers are closed as for a resume.
      killAfter: opts.after === 'kill' && opts.lazyPages === undefined,
    }, ctx);
  } catch (e) {
    pageServer?.abort();
    throw e;
  }
  const kobj = new KobjIds();
  const nsIds = new NsIds();
  ctx.nsIdOf = (type, ino) => nsIds.idOf(type, ino);
  // As CRIU: the dumper's own ids come first and are the inventory's
  // root_ids; a task whose namespace ids differ from them was in a
  // namespace of its own. Ours, read before the tree is seized: they do
  // not depend on it, and the freeze is 1 ms shorter (a final dump's is
  // 40-50 ms on the benchmark VM).
  let rootIds: TaskKobjIdsEntry;
  try {
    rootIds = taskIds(process.pid, kobj, nsIds);
  } catch (e) {
    pageServer?.abort();
    throw e;
  }
  mark('dump: checked');
  const { tree, guard, stats, t0 } = seizeGuarded(pid, opts, () => pageServer?.abort());
  mark('dump: seized');
  let networkLocked = false;
  /** Tasks of BIG_MEMORY_PAGES present pages or more: the kill helps free their memory. */
  const bigMemory = new Set<number>();
  try {
    faultPoint('dump.seized');
    // And again once seized: credentials cannot change any more, and the tree is the one we hold.
    checkTraceable(tree.tasks.map((t) => t.pid), opts.asCaller);
    checkOwnNamespaces(tree.tasks.filter((t) => !t.zombie).map((t) => t.pid), opts.asCaller);
    await notify('network-lock');
    networkLocked = true;
    for (const node of tree.tasks) if (!node.zombie) refuseForeignNamespaces(node.pid, handledNs);
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
    // --lazy-pages: what the page server serves once the images are written.
    const lazy = opts.lazyPages ? new Map<number, FrozenTask>() : undefined;
    const files = new TreeFiles(ctx, pid);
    const pstree: PstreeEntry[] = [];
    const fdinfoWritten = new Set<number>();
    const tm = process.hrtime.bigint();
    mark('dump: ids, resource kinds');
    const live = tree.tasks.filter((n) => !n.zombie);
    // Big tasks' smaps read beside the rest of the questions, the cores and the kinds' images; each task's memory step awaits its own (smaps-ahead.ts says why not earlier).
    const { asked, unlocked: smaps } = askTree(live, () => smapsAhead(live.map((n) => n.pid)));
    mark('dump: asked');
    // A dump past a small one's heap here (a 1 MiB dump has 8 MiB in use, a
    // 20,000-VMA one 12-14): the seize's and questions' garbage and the code
    // only they ran leave before the memory walk, whose VMA entries would
    // otherwise grow the heap on top of them (20,000 VMAs: 66-67 -> 57-58 MiB).
    const early = trimIfGrown(true, 10 << 20);
    if (early) log.debug(`heap collected (${early.before.toFixed(1)} -> ${early.after.toFixed(1)} MiB in use) and code pages dropped before the tasks' dumps`);
    let done = 0;
    for (const node of tree.tasks) {
      progress.tasks(done, tree.tasks.length);
      const vp = treePids.of(node.pid);
      const vppid = node.ppid === 0 || node === tree.root ? 0 : treePids.of(node.ppid).vpid;
      if (node.zombie) {
        pstree.push({ pid: vp.vpid, ppid: vppid, pgid: vp.vpgid, sid: vp.vsid, threads: [0], ...nestedPids(vp, true) });
        dumpZombie(node, vp.vpid, ctx);
        done++;
        continue;
      }
      const ids = taskIds(node.pid, kobj, nsIds);
      pstree.push({ pid: vp.vpid, ppid: vppid, pgid: vp.vpgid, sid: vp.vsid, threads: [...vp.vtids], ...nestedPids(vp) });
      const present = presentPages(stats);
      await dumpTask(node, vp, asked.get(node) as TaskAsked, ctx, ids, files, fdinfoWritten, {
        onBytes: (n) => progress.bytes(n),
        stats,
        treePids: tree.tasks.map((t) => t.pid),
        smaps,
        ...(lazy ? { lazy } : {}),
      });
      if (presentPages(stats) - present >= BIG_MEMORY_PAGES) bigMemory.add(node.pid);
      done++;
    }
    progress.tasks(done, tree.tasks.length);
    stats.memdumpTimeUs = usToNow(tm);
    mark('dump: tasks dumped');
    writeTreeImages(ctx, { pstree, rootIds, kinds: opts.kinds, stats, t0, workDir: opts.workDir });
    space.finishDump(ctx);
    // Every page is stored on the page server's side before the tree may go.
    pageServer?.close();
    // Last: the size and SHA-256 of every file above, for the restore to check.
    ctx.saveImage('CRIU_TS_CHECKSUMS', undefined, checksumEntries(dir));
    faultPoint('dump.images');
    mark('dump: tree images, checksums');
    // A refused post-dump keeps the tree alive, as CRIU does.
    await notify('post-dump');
    if (opts.lazyPages && lazy) {
      // As CRIU's lazy migration: the tree stays frozen, with the pages the images point at, until the daemon has them all.
      const lp = opts.lazyPages;
      await serveFrozenTree({
        address: lp.address, port: lp.port, tasks: lazy,
        onListening: async (port) => {
          await notify('status-ready');
          lp.onListening?.(port);
        },
      });
    }
  } catch (err) {
    progress.done();
    // A failure of ours (e.g. ENOSPC from a write) is said with the images dir it concerns.
    const e = isCriuTsError(err) ? err : new CriuTsError('EDUMP', `writing images to ${dir}: ${(err as Error).message}`, { dir }, err);
    // The caller reports the error itself (the CLI in one line, and in the log file): here it is only the step.
    log.info(`dump failed, resuming the tree: ${e.message}`);
    space.abortDump(ctx);
    pageServer?.abort();
    // What the dump took from the tasks (TCP repair mode, the network lock) goes back before they run.
    try {
      ctx.exit(true);
    } catch (x) {
      log.warn(`putting the tree's state back: ${(x as Error).message}`);
    }
    releaseTree(tree.tasks, 'resume');
    guard?.done();
    if (networkLocked) await notify('network-unlock').catch(() => undefined);
    throw e;
  }
  progress.done();
  // Tasks that run on get back what the dump took from them (TCP repair
  // mode and SO_REUSEADDR, the network lock, pty queues) before they run,
  // as CRIU unlocks the network before it resumes the tree: a task that
  // reads a socket still in repair mode gets EPERM. Killed tasks die
  // first, so that their sockets close still in repair mode (no FIN, no RST).
  const live = opts.after !== 'kill';
  let putBack: { e: unknown } | undefined;
  if (live) {
    try {
      ctx.exit(true);
    } catch (e) {
      putBack = { e };
    }
  }
  releaseTree(tree.tasks, opts.after, bigMemory);
  guard?.done();
  if (!live) ctx.exit(false);
  mark(`dump: released (${opts.after})`);
  if (putBack) throw putBack.e;
  if (opts.after === 'resume') await notify('network-unlock');
  log.info(`dump of ${pid} finished: ${tree.tasks.length} task(s), ${stats.pagesWritten} pages`);
  return { pids: tree.tasks.map((t) => t.pid), stats };
}
