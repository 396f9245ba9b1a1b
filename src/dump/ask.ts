/**
 * The questions only a task can answer, asked of the whole held tree
 * before any process is dumped, side by side: every thread is first armed
 * with its self-cure frame, then each injected round of questions goes to
 * every process (and every thread) at once (infect/side-by-side.ts,
 * kinds/steps.ts). A 100-process tree pays for about as many rounds as one
 * process, not a hundred times as many.
 */
import type { TaskCoreEntry } from '../images/messages.js';
import { CriuTsError } from '../errors.js';
import { type ProcStatus, parseStatus } from '../proc/index.js';
import type { Tracee } from '../infect/tracee.js';
import { runEach } from '../kinds/steps.js';
import { syscallEachSettled } from '../infect/side-by-side.js';
import { writeMemEach } from '../infect/write-each.js';
import { faultPoint } from '../fault.js';
import { mark } from '../timeline.js';
import { observedBatch, traceeObserver } from '../infect/observer.js';
import { taskCoreSteps } from './task-state.js';
import { addressSpace, askThreads, type SpaceAnswers, type ThreadAnswers } from '../kinds/index.js';
import type { TaskNode } from './tree.js';

/** Scratch bytes for injected calls' arguments; the threads' self-cure frames follow. */
export const SCRATCH_ARGS_BYTES = 1 << 16;

/** Self-cure frames written per process_vm_writev at most (a frame is 1-12 KiB): bounded so that they are not all held at once. */
const FRAMES_WRITE_BYTES = 256 << 10;

/** What was asked of one process and its threads before its turn (askTree). */
export interface TaskAsked {
  range: { addr: bigint; size: number };
  mainStatus: ProcStatus;
  threads: Map<Tracee, ThreadAnswers>;
  tc: TaskCoreEntry;
  /** the address-space kind's answers (its dumpTask takes them) */
  space: SpaceAnswers;
}

/**
 * Before any process is dumped: arm every thread of every process with its
 * self-cure frame (one scratch area per process serves its threads: they
 * share the address space; past the argument area it holds one frame per
 * thread, infect/sigframe.ts, so that from the moment a thread is armed
 * criu-ts may die and the thread still puts itself back), then ask every
 * process and thread the questions only it can answer, all side by side
 * (kinds/steps.ts): their injected round trips overlap instead of adding up.
 *
 * The address space's questions go first (brk(0) takes the task's mmap
 * lock for writing), then `unlocked` runs (the dump starts its big tasks'
 * smaps reads there, smaps-ahead.ts: a walk that holds the mmap lock for
 * reading would make brk wait), then every other question, beside those
 * reads. `unlocked`'s result is handed back.
 */
export function askTree<U>(tasks: readonly TaskNode[], unlocked: () => U): { asked: Map<TaskNode, TaskAsked>; unlocked: U } {
  const ranges = armTree(tasks);
  mark('ask: armed');
  const spaces = runEach(tasks.map((node) => ({ tracee: node.threads[0] as Tracee, steps: addressSpace().ask(node.threads[0] as Tracee, node.pid) })));
  mark('ask: address spaces');
  const after = unlocked();
  const threads = askThreads(tasks.map((node, i) => ({ threads: node.threads, scratch: (ranges[i] as { addr: bigint }).addr, argsBytes: SCRATCH_ARGS_BYTES })));
  mark('ask: threads');
  const statuses = tasks.map((node) => parseStatus(node.pid, (node.threads[0] as Tracee).tid));
  const tcs = runEach(tasks.map((node, i) => {
    const main = node.threads[0] as Tracee;
    return { tracee: main, steps: taskCoreSteps(main, node.pid, statuses[i] as ProcStatus) };
  }));
  const asked = new Map(tasks.map((node, i) => [node, {
    range: ranges[i] as TaskAsked['range'], mainStatus: statuses[i] as ProcStatus, threads, tc: tcs[i] as TaskCoreEntry, space: spaces[i] as SpaceAnswers,
  }]));
  return { asked, unlocked: after };
}

/**
 * Arm every thread of every (live) process with its self-cure frame, in one
 * scratch area per process (argument bytes first, then a frame per
 * thread): from here on criu-ts may die and each thread puts itself back,
 * the guardian unmapping the area. Returns each process's area, in order.
 * The dump (askTree) and the pre-dump both start with it.
 */
export function armTree(tasks: readonly TaskNode[]): { addr: bigint; size: number }[] {
  const mains = tasks.map((node) => {
    const main = node.threads[0];
    if (!main) throw new CriuTsError('EDUMP', `task ${node.pid}: no threads seized`, { pid: node.pid });
    return main;
  });
  const slots = mains.map((main) => main.selfCureBytes());
  // The scratch areas, one mmap per process, side by side.
  const sizes = tasks.map((node, i) => SCRATCH_ARGS_BYTES + (slots[i] as number) * node.threads.length);
  // The guardian told of every first call's area and frame (first-call.ts) in one message, before any call runs.
  const wanted = observedBatch(() => mains.flatMap((t, i) => {
    const req = t.scratchRequest(sizes[i] as number);
    return req === undefined ? [] : [{ t, i, ...req }];
  }));
  // Every area made is recorded before any failure is thrown: cure unmaps only what it knows of.
  let failure: unknown;
  const made = syscallEachSettled(wanted);
  observedBatch(() => made.forEach((r, k) => {
    const w = wanted[k] as (typeof wanted)[number];
    try {
      if (r.ok) w.t.scratchMade(r.value, sizes[w.i] as number);
      else throw r.error;
    } catch (e) {
      failure ??= e;
    }
  }));
  if (failure !== undefined) throw failure;
  const ranges = tasks.map((node, i) => {
    const main = mains[i] as Tracee;
    const range = { addr: main.mapScratch(sizes[i] as number), size: main.scratchRange?.size ?? 0 };
    for (const t of node.threads) {
      if (t !== main) {
        t.shareScratch(range);
        t.shareGadgets(main);
      }
    }
    return range;
  });
  // Every thread's frame written first, the guardian told of them all in
  // one message, and only then is each thread left where resuming it runs
  // its frame (a 1000-thread dump sent 1,000 messages, each a wake-up of
  // the guardian's shell). A thread whose frame the guardian does not know
  // yet still has its own registers. Those written are entered even when a
  // later one fails, as they were armed one by one before.
  // Each process's frames go in one write per FRAMES_WRITE_BYTES (write-each.ts), not one per thread,
  // copied as they come (a frame's image is a buffer buildSelfCure uses again for the next);
  // a frame that could not be written is forgotten, its thread left without one.
  const written: { t: Tracee; slot: bigint | undefined }[] = [];
  let armFailure: unknown;
  let frames: { addr: bigint; len: number; w: (typeof written)[number] }[] = [];
  let frameBytes = 0;
  // Every frame fits: an image is at most its slot.
  const staging = Buffer.allocUnsafe(Math.max(FRAMES_WRITE_BYTES, ...slots));
  const flush = (main: Tracee): void => {
    const these = frames;
    frames = [];
    const bytes = frameBytes;
    frameBytes = 0;
    try {
      writeMemEach(main, staging.subarray(0, bytes), these);
    } catch (e) {
      armFailure ??= e;
      for (const f of these) {
        f.w.t.forgetSelfCure();
        f.w.slot = undefined;
      }
    }
  };
  try {
    tasks.forEach((node, i) => {
      const slot = slots[i] as number;
      const main = mains[i] as Tracee;
      node.threads.forEach((t, k) => {
        const at = (ranges[i] as { addr: bigint }).addr + BigInt(SCRATCH_ARGS_BYTES + slot * k);
        const w: (typeof written)[number] = { t, slot: undefined };
        written.push(w);
        const put = (a: bigint, data: Buffer): void => {
          if (frameBytes + data.length > staging.length) flush(main);
          data.copy(staging, frameBytes);
          frames.push({ addr: a, len: data.length, w });
          frameBytes += data.length;
        };
        if (t.writeSelfCure(at, put)) w.slot = at;
      });
      flush(main);
    });
  } catch (e) {
    armFailure ??= e;
    const main = frames[0]?.w.t;
    if (main !== undefined) flush(main);
  }
  traceeObserver()?.frames(written.flatMap((w) => (w.slot === undefined ? [] : [{ tid: w.t.tid, slot: w.slot }])));
  for (const w of written) {
    try {
      w.t.enterSelfCure();
    } catch (e) {
      armFailure ??= e;
    }
  }
  if (armFailure !== undefined) throw armFailure;
  for (let i = 0; i < tasks.length; i++) faultPoint('dump.self-cure');
  return ranges;
}
