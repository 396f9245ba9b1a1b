/**
 * Procedures of injected calls written once, run either call after call in
 * one task or side by side in many (infect/side-by-side.ts). A procedure is
 * a generator that yields the injected syscalls it wants and receives each
 * raw result; a -errno result is thrown into it as RemoteSyscallError, as
 * Tracee.syscall would throw (unless it asked with callRaw). The dump asks
 * every process of a tree its task-core questions this way, the restore
 * sets every thread's state and credentials: a 1000-thread or 100-process
 * tree overlaps its round trips instead of adding them up.
 *
 * For restore procedures, arguments in memory go to a region of the shared
 * scratch area that belongs to the one thread; a thread whose arguments may
 * not fit its region (say, thousands of supplementary groups) is run on its
 * own.
 */
import { CriuTsError } from '../errors.js';
import { RemoteSyscallError, type Tracee } from '../infect/tracee.js';
import { syscallEach } from '../infect/side-by-side.js';
import type { RestoreTaskHandle } from './types.js';

type Arg = number | bigint;

export interface StepCall {
  name: string;
  nr: number;
  args: readonly Arg[];
  /** hand back -errno as a result instead of throwing it */
  raw?: boolean;
}

export type Steps = Generator<StepCall, void, bigint>;

/** What a procedure may use besides its calls: its thread, and scratch memory for arguments. */
export interface StepHandle {
  pid: number;
  tid: number;
  putBytes(b: Buffer): bigint;
  putString(s: string): bigint;
}

/** `const r = yield* call(name, nr, ...args)` inside a procedure. */
export function* call(name: string, nr: number, ...args: Arg[]): Generator<StepCall, bigint, bigint> {
  return yield { name, nr, args };
}

/** The same, with -errno handed back instead of thrown. */
export function* callRaw(name: string, nr: number, ...args: Arg[]): Generator<StepCall, bigint, bigint> {
  return yield { name, nr, args, raw: true };
}

const isErrno = (r: bigint): boolean => r < 0n && r > -4096n;

/** Feed one result to a procedure: -errno is thrown into it unless it asked for raw results. */
function resume<R>(g: Generator<StepCall, R, bigint>, c: StepCall, r: bigint, tid: number): IteratorResult<StepCall, R> {
  return !c.raw && isErrno(r) ? g.throw(new RemoteSyscallError(c.name, Number(-r), tid)) : g.next(r);
}

/** Run a procedure in one task, call after call; returns what the procedure returns. */
export function runOn<R>(t: Tracee, g: Generator<StepCall, R, bigint>): R {
  let next = g.next();
  while (!next.done) {
    const c = next.value;
    next = resume(g, c, t.syscallRaw(c.nr, ...c.args), t.tid);
  }
  return next.value;
}

/** Run a procedure in one thread, call after call, through its handle. */
export function runSteps(h: RestoreTaskHandle, make: (sh: StepHandle) => Steps): void {
  runOn(h.tracee, make({ pid: h.pid, tid: h.tracee.tid, putBytes: h.putBytes, putString: h.putString }));
}

/**
 * Run each procedure in its own task, all side by side: every round takes
 * each unfinished procedure one call further. Each task appears once.
 * Returns what each procedure returned, in order.
 */
export function runEach<R>(items: readonly { tracee: Tracee; steps: Generator<StepCall, R, bigint> }[]): R[] {
  const out: R[] = new Array<R>(items.length);
  let live: { i: number; call: StepCall }[] = [];
  items.forEach((it, i) => {
    const first = it.steps.next();
    if (first.done) out[i] = first.value;
    else live.push({ i, call: first.value });
  });
  while (live.length > 0) {
    const results = syscallEach(live.map((r) => ({ t: (items[r.i] as (typeof items)[number]).tracee, nr: r.call.nr, args: r.call.args })));
    const next: typeof live = [];
    live.forEach((r, k) => {
      const it = items[r.i] as (typeof items)[number];
      const n = resume(it.steps, r.call, results[k] as bigint, it.tracee.tid);
      if (n.done) out[r.i] = n.value;
      else next.push({ i: r.i, call: n.value });
    });
    live = next;
  }
  return out;
}

export interface SideSteps {
  tracee: Tracee;
  /** the thread group, for the procedure */
  pid: number;
  make(sh: StepHandle): Steps;
  /** most argument bytes the procedure puts at once; above REGION_BYTES it runs on its own */
  putBytes: number;
  /** the handle to run it on its own with */
  handle: RestoreTaskHandle;
}

/** Scratch bytes each thread gets for its arguments when run side by side. */
export const REGION_BYTES = 1024;

/**
 * Run each procedure in its thread, side by side in batches: every round
 * takes each unfinished procedure one call further. All threads share the
 * scratch area `scratch`. The first failure is thrown once every call
 * under way has been collected; procedures after a failure are not begun.
 */
export function runStepsEach(items: readonly SideSteps[], scratch: { addr: bigint; size: number }): void {
  runStepsAcross([{ items, scratch }]);
}

/** The procedures of one process (or of processes sharing one address space), and the scratch area they share. */
export interface StepGroup {
  items: readonly SideSteps[];
  scratch: { addr: bigint; size: number };
}

/**
 * runStepsEach for the threads of many processes at once, each process's
 * procedures given regions of its own scratch area: every round takes
 * each unfinished procedure of every process one call further, so the
 * round trips of a tree's processes overlap as those of one process's
 * threads do. The first failure is thrown once every call under way has
 * been collected.
 */
export function runStepsAcross(groups: readonly StepGroup[]): void {
  for (const g of groups) for (const it of g.items) if (it.putBytes > REGION_BYTES) runSteps(it.handle, it.make);
  // Round k runs the k-th batch of every process: a batch is as many procedures as its scratch has regions.
  const batches: { it: SideSteps; region: bigint; size: number }[][] = [];
  for (const g of groups) {
    const side = g.items.filter((it) => it.putBytes <= REGION_BYTES);
    // Regions as big as the group's procedures need (a put is used by the
    // call right after it, so a procedure's puts may wrap within its
    // region): a 1000-thread process's state steps (32 bytes) go in one
    // batch, not 16 of 64 threads each.
    const size = Math.min(REGION_BYTES, Math.max(16, ...side.map((it) => (it.putBytes + 15) & ~15)));
    const perBatch = Math.max(1, Math.floor(g.scratch.size / size));
    side.forEach((it, i) => {
      const k = Math.floor(i / perBatch);
      (batches[k] ??= []).push({ it, region: g.scratch.addr + BigInt((i % perBatch) * size), size });
    });
  }
  for (const b of batches) runBatch(b);
}

function runBatch(batch: readonly { it: SideSteps; region: bigint; size: number }[]): void {
  runEach(batch.map(({ it, region, size }) => {
    let off = 0;
    const putBytes = (b: Buffer): bigint => {
      const len = (b.length + 15) & ~15;
      if (len > size) throw new CriuTsError('ERESTORE', `argument of ${b.length} bytes does not fit the scratch region`, { pid: it.tracee.tid });
      if (off + len > size) off = 0;
      const a = region + BigInt(off);
      it.tracee.writeMem(a, b);
      off += len;
      return a;
    };
    const sh: StepHandle = { pid: it.pid, tid: it.tracee.tid, putBytes, putString: (str) => putBytes(Buffer.from(`${str}\0`)) };
    return { tracee: it.tracee, steps: it.make(sh) };
  }));
}
