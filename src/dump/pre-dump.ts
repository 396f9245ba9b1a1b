/**
 * pre-dump: copy the tree's memory while it keeps running, so that the
 * final dump has only the pages written since to copy (CRIU's pre-dump).
 *
 * The tree is stopped only while the copy is planned: per task, the
 * pagemap a dump would write (with --prev-images-dir, unchanged pages point
 * into the parent) and every private VMA write-protected by the tracker.
 * The tasks then run on while their pages are read into pages-<n>.img
 * (CRIU's --pre-dump-mode read; kinds/memory/deferred-pages.ts says why a
 * page written meanwhile does no harm). Memory tracking is always on (as in CRIU, pre-dump implies
 * --track-mem): see kinds/memory/tracking.ts. Also written: inventory.img,
 * stats-dump, the `parent` link and criu-ts-track.json. With a page
 * server (--page-server), pagemaps and pages go there instead, as a
 * dump's do (dump/page-server.ts keeps the chain on its side). Nothing else of
 * the tasks is looked at, so a pre-dump never refuses a file or a socket;
 * the final dump does.
 */
import { randomUuid } from '../sys/index.js';
import { beginChecksums, checksumEntries, endChecksums, storeImage } from '../images/index.js';
import type { InventoryEntry, StatsEntry } from '../images/messages.js';
import { CriuTsError, isCriuTsError } from '../errors.js';
import { logger } from '../log.js';
import type { DumpTreeOptions, DumpResult } from './options.js';
import { checkTarget, seizeGuarded, seizeTree, releaseTree, usToNow } from './tree.js';
import { hasOwnNamespace, refuseForeignNamespaces } from './namespaces.js';
import { TreePids } from './pids.js';
import { checkImagesDir } from './index.js';
import { checkOwnNamespaces, checkTraceable } from './authorize.js';
import { walkTree } from '../proc/children.js';
import { parseStat } from '../proc/stat.js';
import { PageServerClient } from '../kinds/memory/page-server-client.js';
import { addressSpace, handledNamespaces, type SpacePreDumped } from '../kinds/index.js';
import type { Tracee } from '../infect/tracee.js';
import { DumpSession } from './context.js';
import { armTree } from './ask.js';
import { faultPoint } from '../fault.js';

const log = logger('dump');


/**
 * Pre-dump the tree. As a dump, every file written into the images dir is
 * hashed as it is written and the digests end it as criu-ts-checksums:
 * the restore of a later dump checks the pages it takes from here
 * (restore/images.ts checkParentPages).
 */
export async function preDumpTree(opts: DumpTreeOptions): Promise<DumpResult> {
  beginChecksums(opts.dir);
  try {
    return await preDumpHashed(opts);
  } finally {
    endChecksums(opts.dir);
  }
}

async function preDumpHashed(opts: DumpTreeOptions): Promise<DumpResult> {
  const pid = opts.pid;
  checkTarget(pid, 'pre-dump');
  if (opts.after === 'stop') throw new CriuTsError('EUSAGE', 'pre-dump always leaves the tree running (--leave-stopped makes no sense here)', {});
  const dir = opts.dir;
  checkImagesDir(dir, opts.asCaller);
  refuseForeignNamespaces(pid, handledNamespaces());
  // For an unprivileged caller (RPC): only tasks it could ptrace itself, before and after seizing.
  // The walk is for an unprivileged caller only: root's dump walks the tree once, as it seizes it.
  if (opts.asCaller !== undefined) checkTraceable(walkTree(pid), opts.asCaller);
  await opts.notify({ point: 'pre-dump', rootPid: pid });
  // Before any task is touched: a page server that does not answer fails the pre-dump here.
  const pageServer = opts.pageServer ? PageServerClient.connect(opts.pageServer.address, opts.pageServer.port) : undefined;
  // Its state (the parent record, the trackers it reads and leaves) is the address-space kind's, kept in a dump context.
  const ctx = new DumpSession(dir, opts.kinds);
  if (pageServer) ctx.pageServer = pageServer;
  const space = addressSpace();
  try {
    space.beginDump({ prevDir: opts.prevDir, keepTracking: true, lazy: false, killAfter: false }, ctx);
  } catch (e) {
    pageServer?.abort();
    throw e;
  }
  const { tree, guard, stats, t0 } = seizeGuarded(pid, opts, () => pageServer?.abort());
  const pids = tree.tasks.map((t) => t.pid);
  // Planned while the tree is stopped, copied once it runs (deferred-pages.ts).
  const copies: { pid: number; copy: NonNullable<SpacePreDumped['copy']> }[] = [];
  let shPages = 0;
  const tm = process.hrtime.bigint();
  try {
    faultPoint('dump.seized');
    checkTraceable(pids, opts.asCaller);
    checkOwnNamespaces(pids, opts.asCaller);
    // Images are named by the pids the tree sees (its own pid namespace's), as the final dump's.
    const treePids = TreePids.read(tree);
    const live = tree.tasks.filter((n) => !n.zombie && n.threads[0] !== undefined);
    for (const node of live) refuseForeignNamespaces(node.pid, handledNamespaces());
    // Every thread armed with its self-cure frame before the first injected call (dump/ask.ts): a pre-dump
    // killed from here on leaves each thread to put itself back (registers, signal mask) and the guardian
    // to unmap the scratch areas, as a dump does.
    const areas = armTree(live);
    for (const [i, node] of live.entries()) {
      const main = node.threads[0];
      if (!main) continue;
      const scratch = areas[i] as { addr: bigint; size: number };
      const plan = space.preDumpTask({
        pid: node.pid, imageId: treePids.of(node.pid).vpid, main, treePids: pids, exclude: [scratch], ownIpcNs: hasOwnNamespace(node.pid, 'ipc'),
      }, ctx);
      // Every private VMA is write-protected before the tree runs again: what it writes from now on is copied by the next dump.
      if (plan.copy) copies.push({ pid: node.pid, copy: plan.copy });
      shPages += plan.sharedPages;
      stats.pagesScanned += plan.pagesScanned;
    }
  } catch (err) {
    const e = isCriuTsError(err) ? err : new CriuTsError('EDUMP', `writing images to ${dir}: ${(err as Error).message}`, { dir }, err);
    log.error(`pre-dump failed, resuming the tree: ${e.message}`);
    space.abortDump(ctx);
    pageServer?.abort();
    releaseTree(tree.tasks, 'resume');
    guard?.done();
    throw e;
  }
  releaseTree(tree.tasks, 'resume');
  // The tasks are cured and let go. The guardian stays until the record is
  // written: if criu-ts dies while it copies, it closes the trackers this
  // run made or scanned, as the failure path below does.
  stats.frozenTimeUs = usToNow(t0);
  try {
    for (const c of copies) {
      let got: ReturnType<typeof c.copy>;
      try {
        got = c.copy();
      } catch (e) {
        // The tree runs: a task may exit meanwhile (a shell's short-lived child). Its pages are of no use to anyone now.
        if (!taskGone(c.pid)) throw e;
        log.info(`task ${c.pid} exited while its pages were copied: no pagemap for it`);
        continue;
      }
      faultPoint('dump.memory');
      stats.pagesWritten += got.pagesWritten;
      stats.pagesSkippedParent += got.pagesSkippedParent;
    }
    stats.memdumpTimeUs = usToNow(tm);
    stats.memwriteTimeUs = stats.memdumpTimeUs;
    const inv: InventoryEntry = { img_version: 2, fdinfo_per_id: true, ns_per_id: true, lsmtype: 'NO_LSM', dump_criu_run_id: randomUuid() };
    storeImage(dir, 'INVENTORY', undefined, [inv]);
    const st: StatsEntry = {
      dump: {
        freezing_time: stats.freezingTimeUs, frozen_time: stats.frozenTimeUs, memdump_time: stats.memdumpTimeUs,
        memwrite_time: stats.memwriteTimeUs, pages_scanned: BigInt(stats.pagesScanned),
        pages_skipped_parent: BigInt(stats.pagesSkippedParent), pages_written: BigInt(stats.pagesWritten), pages_lazy: 0n,
        shpages_scanned: BigInt(shPages), shpages_skipped_parent: 0n, shpages_written: BigInt(shPages),
      },
    };
    storeImage(opts.workDir ?? dir, 'STATS', 'dump', [st]);
    // Last: the size and SHA-256 of every file above (pages images with a digest per block).
    storeImage(dir, 'CRIU_TS_CHECKSUMS', undefined, checksumEntries(dir));
    // Every page is stored on the page server's side before the record says so.
    pageServer?.close();
    faultPoint('dump.images');
    space.finishDump(ctx);
    guard?.done();
  } catch (err) {
    const e = isCriuTsError(err) ? err : new CriuTsError('EDUMP', `writing images to ${dir}: ${(err as Error).message}`, { dir }, err);
    log.error(`pre-dump failed while copying (the tree runs): ${e.message}`);
    pageServer?.abort();
    try {
      closeTrackersAgain(pid, opts, (again) => space.abortDump(ctx, again));
    } finally {
      guard?.done();
    }
    throw e;
  }
  log.info(`pre-dump of ${pid} finished: ${tree.tasks.length} task(s), ${stats.pagesWritten} pages written, ${stats.pagesSkippedParent} in the parent`);
  await opts.notify({ point: 'post-dump', rootPid: pid });
  return { pids, stats };
}

/** The task has exited (gone, or a zombie whose memory is gone). */
function taskGone(pid: number): boolean {
  try {
    const { state } = parseStat(pid);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/**
 * A copy failed after the tree was let go: seize it once more to close the
 * trackers this run made or scanned (their protection must not outlive a
 * run that stored nothing usable). Tasks gone since need nothing. The tree
 * is armed as for the pre-dump itself (armTree) before the first close is
 * injected, with the guardian still running: criu-ts killed in here leaves
 * each thread to put itself back and the guardian to unmap the scratch
 * areas and close the trackers.
 */
function closeTrackersAgain(pid: number, opts: DumpTreeOptions, abort: (again: ReadonlyMap<number, Tracee>) => void): void {
  let again: ReturnType<typeof seizeTree>;
  try {
    again = seizeTree(pid, opts.timeoutMs, opts.freezeCgroup);
  } catch (e) {
    log.warn(`pre-dump: could not stop the tree again to close its memory trackers (${(e as Error).message}); the next dump closes them`);
    abort(new Map());
    return;
  }
  try {
    const live = again.tasks.filter((t) => t.threads[0] !== undefined && !t.zombie);
    armTree(live);
    abort(new Map(live.map((t) => [t.pid, t.threads[0] as Tracee] as const)));
  } catch (e) {
    log.warn(`pre-dump: could not close the memory trackers (${(e as Error).message}); the next dump closes them`);
    abort(new Map());
  } finally {
    releaseTree(again.tasks, 'resume');
  }
}

