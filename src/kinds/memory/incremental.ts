/**
 * One dump or pre-dump's view of memory tracking (tracking.ts) and of its
 * parent images (parent-images.ts), task by task:
 *
 * - begin(): find the task's tracker. Only one that the parent's record
 *   names (pid, fd, inode) is used; any other tracker-like userfaultfd (a
 *   copy inherited through fork, one left by a criu-ts that died before
 *   writing its record) is closed. With a usable tracker and a parent, the
 *   memory dump learns what was written since (PAGEMAP_SCAN) and what the
 *   parent holds, and marks the rest PE_PARENT.
 * - end(): a pre-dump (or `dump --track-mem -R`) makes a tracker where
 *   there is none and protects every private VMA that was not tracked; a
 *   final dump closes the tracker, so the task's fds are its own again
 *   before they are dumped (or, when the dump kills the tree, leaves it
 *   open and hidden from the fd dump: the kill closes it).
 * - finish(): writes this dump's record. abort(): on any failure, closes
 *   every tracker this run scanned or made; each is also told to the
 *   guardian (infect/guardian.ts), which closes it if criu-ts dies first.
 *
 * A record is used once: the first scan consumes (deletes) the parent's
 * record, because the scan re-protects what it reports. A second dump from
 * the same parent, or one after a failed run, finds no record and copies
 * everything, which is always right.
 */
import { closeSync, openSync, rmSync, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { kcmp, KCMP } from '../../sys/index.js';
import type { Tracee } from '../../infect/tracee.js';
import { traceeObserver } from '../../infect/observer.js';
import { CriuTsError } from '../../errors.js';
import { logger } from '../../log.js';
import type { MemoryDump, MemoryTrackContext } from './dump.js';
import { coverage, linkParent, pagemapRanges } from './parent-images.js';
import type { Range } from './ranges.js';
import {
  TRACK_RECORD, readTrackRecord, writeTrackRecord, findTrackers, createTracker, protectRange, closeTracker, scanWritten, scanData, scanWrittenAndData,
  type Tracker,
} from './tracking.js';
import { imageFile, imagePath } from '../../images/index.js';

const log = logger('mem');

export interface IncrementalOptions {
  /** this dump's images dir */
  dir: string;
  /** --prev-images-dir, resolved; undefined: no parent */
  prevDir?: string | undefined;
  /** keep (or start) tracking after this dump: pre-dump, or dump --track-mem --leave-running */
  keepTracking: boolean;
  /**
   * The dump kills the tree once its images are complete: a final dump
   * leaves each tracker open (hidden from the fd dump) instead of closing
   * it while the tree is frozen. Closing a tracker has the kernel clear the
   * write protection of every page it covers (60 ms for 1 GiB here, under
   * shadow paging), which the kill makes needless. A failed dump closes it
   * (abort), the guardian if criu-ts dies.
   */
  killAfter?: boolean;
  /**
   * Pagemaps go to a page server: the record keeps what each task's
   * pagemap covered, since no pagemap image stays here for the next dump
   * to read (the server answers, per pagemap, whether it holds a parent).
   */
  remote?: boolean;
}

interface TaskState {
  t: Tracee;
  own: Tracker | undefined;
  pagemapFd: number;
  /** ranges whose scan succeeded: registered with the tracker already */
  tracked: { start: bigint; end: bigint }[];
}

export class IncrementalMemory {
  private readonly record: Map<number, Tracker>;
  private readonly next = new Map<number, Tracker>();
  private readonly tasks = new Map<number, TaskState>();
  /** trackers this run scanned or made: closed again if the run fails */
  private readonly touched: { t: Tracee; fd: number }[] = [];
  /** trackers a final dump that kills the tree leaves to the kill, by pid */
  private readonly leftToKill = new Map<number, number>();
  private consumed = false;

  constructor(private readonly opts: IncrementalOptions) {
    const prev = opts.prevDir;
    if (prev !== undefined) {
      if (!existsSync(prev) || !statSync(prev).isDirectory()) {
        throw new CriuTsError('EUSAGE', `--prev-images-dir ${prev}: no such directory`, { dir: prev });
      }
      if (resolve(prev) === resolve(opts.dir)) throw new CriuTsError('EUSAGE', '--prev-images-dir is the images dir itself', { dir: prev });
      linkParent(opts.dir, prev);
    }
    this.record = prev === undefined ? new Map() : readTrackRecord(prev);
  }

  /**
   * Before the task's memory is dumped (main thread `t` seized, scratch
   * mapped). `imageId`: the pid its images are named by (the tree's own pid
   * namespace's); the tracker's record stays keyed by our pid.
   */
  begin(pid: number, t: Tracee, treePids: readonly number[], imageId = pid): MemoryTrackContext | undefined {
    const rec = this.record.get(pid);
    let own: Tracker | undefined;
    for (const tr of findTrackers(pid)) {
      if (rec && tr.fd === rec.fd && tr.ino === rec.ino) {
        own = tr;
        continue;
      }
      if (this.keepsSharedTable(pid, tr, treePids)) continue;
      log.info(`task ${pid}: closing stale memory tracker fd ${tr.fd}`);
      closeTracker(t, tr.fd);
    }
    const st: TaskState = { t, own, pagemapFd: -1, tracked: [] };
    this.tasks.set(pid, st);
    const prev = this.opts.prevDir;
    if (!own || prev === undefined) return undefined;
    this.consume();
    this.touch(pid, t, own);
    st.pagemapFd = openSync(`/proc/${pid}/pagemap`, 'r');
    // The parent's pagemap where it is here (a local chain, or a page server writing into the same dir); else what its record says was sent.
    const parent = existsSync(imagePath(prev, 'PAGEMAP', imageId)) ? coverage(prev, imageFile('PAGEMAP', imageId)) : rec?.covered ?? [];
    return {
      parent,
      scan: (start, end) => {
        const r = scanWritten(st.pagemapFd, pid, start, end);
        if (r !== undefined) st.tracked.push({ start, end });
        return r;
      },
      data: (start, end, anonOnly, withSwap) => scanData(st.pagemapFd, pid, start, end, anonOnly, withSwap),
      // The tracking ends with this dump: one walk per VMA, nothing protected again.
      ...(this.opts.keepTracking ? {} : { scanOnce: (start: bigint, end: bigint, withSwap: boolean) => scanWrittenAndData(st.pagemapFd, pid, start, end, withSwap) }),
    };
  }

  /** Whether end() protects the private ranges of the memory dump (so dumpMemory must list them). */
  get wantsRanges(): boolean {
    return this.opts.keepTracking;
  }

  /** After the task's memory is dumped. */
  end(pid: number, mem: MemoryDump): void {
    const st = this.tasks.get(pid);
    if (!st) return;
    if (st.pagemapFd >= 0) closeSync(st.pagemapFd);
    st.pagemapFd = -1;
    if (!this.opts.keepTracking) {
      if (st.own && this.opts.killAfter === true) this.leftToKill.set(pid, st.own.fd);
      else if (st.own) closeTracker(st.t, st.own.fd);
      return;
    }
    let tracker = st.own;
    if (!tracker) {
      tracker = createTracker(st.t, pid); // told to the guardian fd by fd as it is made
      this.touched.push({ t: st.t, fd: tracker.fd });
    }
    const tracked = st.tracked;
    // By key, not by a search per VMA: zdtm's maps06 has 30,000 VMAs.
    const scanned = new Set(tracked.map((x) => `${x.start}-${x.end}`));
    let n = 0;
    // Neighbouring VMAs (nothing mapped between them) in one register and
    // one protect, two injected calls for a run of them instead of two per
    // VMA; where the kernel refuses the run (one VMA it cannot track), VMA
    // by VMA.
    const todo = mem.privateRanges.filter((r) => !scanned.has(`${r.start}-${r.end}`));
    for (let i = 0; i < todo.length;) {
      let j = i + 1;
      while (j < todo.length && (todo[j] as Range).start === (todo[j - 1] as Range).end) j++;
      const run = todo.slice(i, j);
      i = j;
      if (run.length > 1 && protectRange(st.t, tracker, (run[0] as Range).start, (run[run.length - 1] as Range).end)) {
        n += run.length;
        continue;
      }
      for (const r of run) if (protectRange(st.t, tracker, r.start, r.end)) n++;
    }
    log.debug(`task ${pid}: tracker fd ${tracker.fd}, ${tracked.length} VMA(s) tracked on, ${n} newly protected`);
    this.next.set(pid, this.opts.remote ? { fd: tracker.fd, ino: tracker.ino, covered: pagemapRanges(mem.pagemap) } : { fd: tracker.fd, ino: tracker.ino });
  }

  /** The images are complete: write this dump's record (when tracking goes on). */
  finish(): void {
    if (this.opts.keepTracking) writeTrackRecord(this.opts.dir, this.next);
  }

  /**
   * The run failed: nothing this run scanned or protected may be trusted
   * later. `again`: the tree was let go and seized once more (a pre-dump's
   * copy failed): close through these tracees, by pid.
   */
  abort(again?: ReadonlyMap<number, Tracee>): void {
    for (const st of this.tasks.values()) {
      if (st.pagemapFd >= 0) closeSync(st.pagemapFd);
      st.pagemapFd = -1;
    }
    for (const { t, fd } of this.touched) {
      const via = again ? again.get(t.tid) : t; // the main thread: tid is the pid
      if (!via) continue;
      try {
        closeTracker(via, fd);
      } catch {
        // the task is gone
      }
    }
    this.touched.length = 0;
  }

  /** The tracker this run keeps in task `pid` (a dump with --track-mem -R, or one the kill ends): its fd is ours, hidden from the dump of the task's fds. */
  keptTrackerFd(pid: number): number | undefined {
    return this.opts.keepTracking ? this.next.get(pid)?.fd : this.leftToKill.get(pid);
  }

  /**
   * A tracker this run scanned (its record is consumed): closed if the run
   * fails, here (abort) or by the guardian if criu-ts dies.
   */
  private touch(pid: number, t: Tracee, tr: Tracker): void {
    this.touched.push({ t, fd: tr.fd });
    traceeObserver()?.tracker(pid, tr.fd, tr.ino);
  }

  private consume(): void {
    if (this.consumed || this.opts.prevDir === undefined) return;
    rmSync(join(this.opts.prevDir, TRACK_RECORD), { force: true });
    this.consumed = true;
  }

  /**
   * A tracker another task of the tree owns, seen here because both share
   * one fd table (clone with CLONE_FILES but not CLONE_VM): leave it be in
   * a pre-dump. A final dump closes it like any other.
   */
  private keepsSharedTable(pid: number, tr: Tracker, treePids: readonly number[]): boolean {
    if (!this.opts.keepTracking) return false;
    for (const [other, rec] of this.record) {
      if (other === pid || rec.ino !== tr.ino || !treePids.includes(other)) continue;
      try {
        if (kcmp(pid, other, KCMP.FILES) === 0) return true;
      } catch {
        // not comparable: treat as not shared
      }
    }
    return false;
  }
}
