/**
 * Restore orchestration (see docs/architecture.md):
 *  1. read the images and plan the tree (plan.ts);
 *  2. create every task with its exact pid, top-down, by injecting clone3
 *     into its parent (the root's parent is a stub), with sessions, groups
 *     and shared files (create.ts);
 *  3. rebuild each task: memory, files, state, threads (task.ts);
 *  4. let group-leader helpers and zombies exit;
 *  5. set registers and masks, and let every thread go.
 * Any failure kills every task created so far: nothing stays behind.
 */
import { closeSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { createFileExclusive, SIGSTOP, SIGCHLD, CLONE_NEWNS } from '../sys/index.js';
import { release, releaseQuiet } from '../infect/ptrace-state.js';
import type { RestoreTreeOptions, RestoreResult, RestoreStats } from './options.js';
import type { RestoreActionPoint } from '../action-points.js';
import { TASK_STOPPED, type BesideChecks } from '../images/index.js';
import { writeRestoreStats } from './stats.js';
import { restoreSession, type RestoreSession } from './context.js';
import { loadDump, type DumpImages } from './images.js';
import { refuseForeignNamespaceIds } from './namespaces.js';
import { RESOURCE_KINDS, handledNamespaces, type RestoreTaskHandle } from '../kinds/index.js';
import { checkImagesFor, pinFilesFor } from './authorize.js';
import { checkDumpChecksums, checkLazyPagesChecksums, checkParentPages } from './images.js';
import { checkConsistency } from './consistency.js';
import { spawnStub, startStub, discardStub, disposeStub, pidTaken, type PendingStub, type Stub } from './stub.js';
import { planTree, planCloneFlags, treeViewOf, type RestoreNode } from './plan.js';
import { createTree, retireHelpers } from './create.js';
import { restoreTaskBody, restoreThreadStates, finalizeTasks } from './task.js';
import { addressSpace, restoreTaskState } from '../kinds/index.js';
import { handleFor } from './handle.js';
import { finishGroupFiles, restoreInheritedFdsEach } from './files.js';
import { makeProgress } from '../progress.js';
import { faultPoint } from '../fault.js';
import { Guardian, guardian } from '../infect/guardian.js';
import { LazyClient } from './lazy-client.js';
import { pidFreed, untilStopped, reapOrphans, killQuiet } from './lifetimes.js';
import { makeZombies, consumeSignal } from './zombies.js';
import { mark } from '../timeline.js';
import { trimIfGrown } from '../heap.js';

export { waitForRoot } from './lifetimes.js';

const log = logger('restore');

export async function restoreTree(opts: RestoreTreeOptions): Promise<RestoreResult> {
  // If we die from here on, the guardian removes the files we created and
  // kills tasks we had let go of; tasks still traced die with us (EXITKILL).
  // It and the stub (the tree's first parent) are spawned now, each on a
  // thread of its own, while the images are read and checked: their
  // execs, and under load their wait for a CPU, are off our path.
  const guard = Guardian.start(true);
  const stub = spawnStub();
  mark('guardian and stub spawning');
  let beside: BesideChecks | undefined;
  try {
    return await restoreChecked(opts, guard, stub, (c) => {
      beside = c;
    }, () => beside?.finish());
  } finally {
    beside?.drop();
    await discardStub(stub);
    guard?.done();
  }
}

/** `beside`: the pages checks left for the fill; `filled`: every task's memory is in, none runs yet. */
async function restoreChecked(
  opts: RestoreTreeOptions, guard: Guardian | undefined, pendingStub: PendingStub, beside: (c: BesideChecks) => void, filled: () => void,
): Promise<RestoreResult> {
  const dir = opts.dir;
  // Every file the dump wrote, as it wrote it, before a single image is believed; but pages files
  // with vmh256 block digests, checked beside the fill (images/beside-checks.ts).
  const { later, listed, verified } = opts.skipChecksums ? { later: [] } : checkDumpChecksums(dir, opts.lazyPages !== undefined, beside);
  mark('image checksums checked');
  const img = loadDump(dir, verified);
  mark('images loaded');
  // The images agree with each other (threads, fds, pages), or nothing is created.
  checkConsistency(img, listed);
  // A lazy restore's pages images: what the restore reads itself; the lazy-pages daemon checks the rest as it serves it.
  checkLazyPagesChecksums(img, later);
  // The pages taken from parent images (pre-dump chains), against each parent's own checksums.
  if (!opts.skipChecksums) checkParentPages(img, opts.lazyPages !== undefined);
  const handledNs = handledNamespaces();
  for (const t of img.tasks) refuseForeignNamespaceIds(t.pstree.pid, t.ids, img.inventory.root_ids, handledNs);
  // For an unprivileged caller: images that ask for more than it has are refused before anything exists.
  checkImagesFor(img, opts.asCaller);
  const session = restoreSession(img, opts.kinds);
  mark('images checked, session made');
  faultPoint('restore.planned');
  // Nothing is made before the guardian runs.
  await guard?.ready();
  mark('guardian started');
  let ok = false;
  let pinned: number[] = [];
  try {
    // What the tree's files need on disk (ghost files, link remaps) is made
    // once the kinds prepared (restoreLoaded): an owner may need the tree's
    // user namespace's maps. Then, for an unprivileged caller, the files the
    // tasks open by name (ghosts are ours). Once every task holds its files,
    // before any runs, the names only the restore needed go (as CRIU's
    // openers remove them).
    const unname = (): void => {
      for (const k of RESOURCE_KINDS) for (const p of k.unnameFiles?.(session.ctx) ?? []) guard?.fileGone(p);
    };
    const r = await restoreLoaded(opts, dir, img, session, pendingStub, unname, filled, (tree) => {
      for (const k of RESOURCE_KINDS) for (const p of k.makeFiles?.(session.ctx, tree) ?? []) guard?.file(p);
      faultPoint('restore.ghosts');
      pinned = pinFilesFor(img, opts.asCaller);
    });
    ok = true;
    return r;
  } finally {
    for (const k of RESOURCE_KINDS) {
      try {
        k.restoreEnded?.(session.ctx, ok);
      } catch (e) {
        log.warn(`${k.name}: ${(e as Error).message}`);
      }
    }
    for (const fd of pinned) closeSync(fd);
  }
}

async function restoreLoaded(
  opts: RestoreTreeOptions, dir: string, img: DumpImages, session: RestoreSession, pendingStub: PendingStub, unname: () => void, filled: () => void,
  materialize: (tree?: RestoreTaskHandle) => void,
): Promise<RestoreResult> {
  if (img.inventory.tcp_close && !opts.kinds.tcpClose) {
    throw new CriuTsError('EUSAGE', 'the images were dumped with --tcp-close: restore them with --tcp-close too', {});
  }
  const plan = planTree(img, opts.kinds.shellJob, session.ctx);
  session.knowTasks((vpid) => plan.nodes.find((n) => n.pid === vpid && n.real !== 0 && !n.helper)?.real);
  planCloneFlags(plan, img.inventory.root_ids, session.ctx);
  if (opts.kinds.restoreSibling && plan.top !== plan.root) {
    // The helper standing in for a leader outside the dump would be the caller's child, and exit on it.
    throw new CriuTsError('EUNSUPPORTED', `--restore-sibling: task ${plan.root.pid}'s session or group leader ${plan.top.pid} is outside the dump: restore with --shell-job, or without --restore-sibling`, { pid: plan.root.pid });
  }
  for (const n of plan.nodes) {
    // A task born in a new pid namespace takes its pid there: nothing in ours to check.
    if (n.inNewPidNs) continue;
    for (const tid of n.images?.pstree.threads ?? [n.pid]) {
      if (tid !== 0 && !(await pidFreed(tid))) throw pidInUse(n, tid, plan.nodes);
    }
  }
  mark('tree planned, pids free');
  const progress = makeProgress('restore', opts.progress);
  const created: RestoreNode[] = [];
  let stub: Stub | undefined;
  const filesCtx = session.ctx;
  // Every task keeps its dumped pid: the root's is known before it exists,
  // unless it is the init of a new pid namespace (then any free pid of ours,
  // known once it is created).
  const notify = async (point: RestoreActionPoint): Promise<void> => {
    await opts.notify({ point, rootPid: plan.root.real || (plan.root.inNewPidNs ? 0 : plan.root.pid) });
  };
  const t0 = process.hrtime.bigint();
  let forkingTimeUs = 0;
  let pagesRestored = 0;
  let prepared = 0;
  let lazy: LazyClient | undefined;
  try {
    // --lazy-pages: the daemon must be there before any task is made; each task's uffd goes to it (kinds/memory/lazy.ts).
    if (opts.lazyPages !== undefined) {
      lazy = await LazyClient.connect(opts.lazyPages);
      filesCtx.lazy = lazy;
      mark('lazy-pages daemon connected');
    }
    // The resource kinds check this host can take the tree and prepare what tasks will join.
    const view = treeViewOf(plan, img);
    for (const k of RESOURCE_KINDS) {
      k.prepareRestore?.(view, filesCtx);
      prepared++;
    }
    // The tree's files are named as its tasks see them: in a mount
    // namespace of its own, they can be made only once its root task has
    // built it, before that task opens or maps any file (createTree).
    const ownMounts = (plan.root.cloneFlags & BigInt(CLONE_NEWNS)) !== 0n;
    if (!ownMounts) materialize();
    // The address-space kind sees every task's images before any task exists.
    addressSpace().planRestore(img.tasks, filesCtx);
    await notify('pre-restore');
    mark('kinds prepared');
    stub = await startStub(pendingStub);
    mark('stub started');
    faultPoint('restore.stub');
    createTree(plan, stub.tracee, filesCtx, created, ownMounts ? (n) => materialize(n.tracee && handleFor(n.real, n.tracee, n.pid)) : undefined);
    faultPoint('restore.created');
    mark('tree created');
    await notify('setup-namespaces');
    await notify('post-setup-namespaces');
    forkingTimeUs = Number((process.hrtime.bigint() - t0) / 1000n);
    disposeStub(stub);
    stub = undefined;
    // A big restore: the garbage the load and the tree's creation promoted
    // goes before the task bodies, which promote into its room instead of
    // new pages, and the code only the load ran leaves our resident set (heap.ts).
    const early = trimIfGrown(true);
    if (early) log.debug(`heap collected (${early.before.toFixed(1)} -> ${early.after.toFixed(1)} MiB in use) and code pages dropped before the task bodies`);
    mark('stub gone');
    // The fd tables made only of inherited files, every such task's side by
    // side: of tasks whose frame exists already (a frame made in the body
    // comes before its fds), not sharing their parent's table.
    const fdsDone = restoreInheritedFdsEach(plan.nodes.flatMap((n) => (
      n.images && n.tracee && n.memory && !n.sharesFiles ? [{ tracee: n.tracee, fds: n.images.fds, inherited: n.inherited }] : []
    )), filesCtx, plan.inheritBase);
    mark('inherited fds');
    let done = 0;
    for (const n of plan.nodes) {
      progress.tasks(done, plan.nodes.length);
      const pages = restoreTaskBody(n, plan, img, filesCtx, n.tracee !== undefined && fdsDone.has(n.tracee));
      faultPoint('restore.task');
      pagesRestored += pages;
      progress.bytes(pages * 4096);
      done++;
    }
    // The threads' own state, every process's side by side.
    restoreThreadStates(plan.nodes, filesCtx);
    mark('thread states');
    progress.tasks(done, plan.nodes.length);
    // Every task's memory is filled: the blocks of pages files no preadv read are checked now, before any task runs.
    filled();
    // And what the bodies promoted (a 1000-thread process's steps, a 10,000-fd table) before the final steps.
    const late = trimIfGrown();
    if (late) log.debug(`heap collected (${late.before.toFixed(1)} -> ${late.after.toFixed(1)} MiB in use) before the final steps`);
    mark('tasks restored');
    finishGroupFiles(plan.groupFinish, plan.nodes.flatMap((n) => {
      const tracee = n.tracee;
      return n.images && tracee ? [{ pid: n.pid, handle: () => handleFor(n.real, tracee, n.pid), fds: n.images.fds }] : [];
    }), filesCtx);
    session.afterAllFiles();
    // Orphans the helpers leave go to these reapers, as they had.
    for (const n of plan.earlyReapers) {
      const tc = n.images?.cores[0]?.tc;
      if (n.tracee && tc) restoreTaskState(handleFor(n.real, n.tracee, n.pid), tc, 'before-helpers-exit');
    }
    retireHelpers(plan, (t) => consumeSignal(t, SIGCHLD));
    makeZombies(plan, img);
    mark('helpers retired');
    finalizeTasks(plan.nodes, img, filesCtx, opts.verify);
    mark('tasks finalized');
    unname();
    for (const k of RESOURCE_KINDS) k.finishRestore?.(filesCtx, false);
    // Every task is ready and still held: a refusal now kills them all.
    await notify('post-restore');
    // Every connection is back (still in repair mode: beforeResume below): let their packets through again.
    for (const k of RESOURCE_KINDS) k.unlockNetwork?.(filesCtx, false);
    await notify('network-unlock');
    // Connections leave repair mode now, their window probes let through (kinds' beforeResume).
    session.beforeResume();
    await notify('pre-resume');
    faultPoint('restore.finish');
    mark('network, resume hooks');
    // Released tasks no longer die with us: until all are, the guardian
    // would kill them.
    const guard = guardian();
    for (const n of plan.nodes) if (n.threads.length > 0) guard?.task(n.real);
    const stopped: number[] = [];
    let releasedAny = false;
    for (const n of plan.nodes) {
      // A task stopped at dump stops again with its own signal (SIGTSTP,
      // SIGTTIN...: its parent's waitid reports it); --leave-stopped uses SIGSTOP.
      const stopSig = opts.leaveStopped ? SIGSTOP
        : n.state === TASK_STOPPED ? (n.images?.cores[0]?.tc?.stop_signo || SIGSTOP) : 0;
      if (stopSig !== 0 && n.threads.length > 0) {
        stopped.push(n.real);
        // Queued now, taken as the task leaves its stop: a stop inside
        // signal delivery (see finalizeTasks) would ignore a detach signal.
        process.kill(n.real, stopSig);
      }
      for (const th of n.threads) {
        if (releasedAny) {
          // A task already let go may have ended this one (its exit_group kills
          // the stopped threads beside it, a kill its children): the restore
          // was done; that task's own run decided.
          if (!releaseQuiet(th.tid, 0)) log.warn(`task ${n.real} thread ${th.tid}: gone before it was released (ended by a task released before it)`);
          continue;
        }
        release(th.tid, 0);
        releasedAny = true;
      }
    }
    // The tasks run: the lazy-pages daemon serves them on its own from now
    // on. Told before the guardian lets them go: a daemon that lost its
    // restore before this word gives up (and its watchdog drops the
    // tasks' pages), so if we die in between, the guardian must kill them.
    mark('tasks released');
    lazy?.finish(true);
    guard?.released();
    mark('daemon told, guardian told');
    // What the tasks need not wait for (a lock table that holds nothing of theirs).
    for (const k of RESOURCE_KINDS) k.resumed?.(filesCtx);
    // The stop signal queued above takes effect as the task runs on: return
    // only once every such task is really stopped, as callers will look.
    await untilStopped(stopped);
  } catch (e) {
    progress.done();
    lazy?.finish(false);
    try { session.afterAllFiles(true); } catch { /* cleanup only */ }
    // The stub goes first: tasks it is still parent of come to us (the
    // subreaper), so killing them below also reaps them.
    if (stub) {
      try { disposeStub(stub); } catch { /* gone */ }
      stub = undefined;
    }
    for (const n of [...created].reverse()) killQuiet(n);
    // A task the stub was still parent of comes to us once the stub is
    // gone: reap it then, so a failed restore leaves not even a zombie.
    // (Not a sibling root: it is our caller's to reap, as CRIU's is.)
    await reapOrphans(created.filter((n) => !(opts.kinds.restoreSibling && n === plan.top)).map((n) => n.pid));
    // Only the kinds that prepared undo: a later one has nothing to remove.
    for (const k of RESOURCE_KINDS.slice(0, prepared).reverse()) {
      try {
        k.finishRestore?.(filesCtx, true);
      } catch (err) {
        log.warn(`${k.name}: ${(err as Error).message}`);
      }
    }
    // No connection comes back from this restore: do not leave the peers' packets dropped.
    for (const k of RESOURCE_KINDS) {
      try {
        k.unlockNetwork?.(filesCtx, true);
      } catch (err) {
        log.warn(`${k.name}: network lock: ${(err as Error).message}`);
      }
    }
    throw e;
  }
  progress.done();
  try {
    await notify('post-resume');
  } catch (e) {
    log.error(`post-resume: ${(e as Error).message}`); // the tree runs already, as with CRIU
  }
  // What callers wait for and signal: pids in our namespace (CRIU's pid->real).
  const root = plan.root.real;
  if (opts.pidfile !== undefined) {
    // CRIU's write_pidfile: O_EXCL, so a name planted in a user's directory is never written through.
    createFileExclusive(opts.pidfile, Buffer.from(String(root)), 0o600);
  }
  const pids = plan.nodes.filter((n) => !n.helper).map((n) => n.real);
  const stats: RestoreStats = {
    forkingTimeUs,
    restoreTimeUs: Number((process.hrtime.bigint() - t0) / 1000n),
    pagesRestored,
    pagesCompared: plan.nodes.reduce((a, n) => a + (n.memory?.compared ?? 0), 0),
    pagesSkippedCow: plan.nodes.reduce((a, n) => a + (n.memory?.skippedCow ?? 0), 0),
  };
  mark('post-resume, pidfile');
  writeRestoreStats(opts.workDir ?? dir, stats);
  mark('stats written');
  log.info(`restored ${pids.length} task(s), root ${root}`);
  return { pid: root, pids, stats };
}

/**
 * A pid the restore needs is taken. When it is the pid of a session or
 * group leader outside the dump (the plan's helper stands in for it), say
 * so: most often the dump was of a shell's job whose shell still runs, and
 * --shell-job (the tree joins criu-ts's session and group) is the answer.
 */
function pidInUse(n: RestoreNode, tid: number, nodes: readonly RestoreNode[]): CriuTsError {
  if (n.helper) {
    const who = nodes.find((m) => !m.helper && (m.sid === tid || m.pgid === tid));
    const what = who === undefined ? `group or session ${tid}` : `task ${who.pid}'s ${who.sid === tid ? 'session' : 'process group'} ${tid}`;
    return new CriuTsError('EBUSY', `${what} has its leader outside the dump and pid ${tid} is in use here: restore with --shell-job to put the tree in criu-ts's session and group instead`, { pid: tid });
  }
  return pidTaken(tid);
}
