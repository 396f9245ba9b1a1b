/**
 * Per-thread restore procedures written once, run either call after call in
 * one thread or side by side in many (infect/side-by-side.ts). A procedure
 * is a generator that yields the injected syscalls it wants and receives
 * each raw result; a -errno result is thrown into it as RemoteSyscallError,
 * as RestoreTaskHandle.syscall would throw. Side by side, a 1000-thread
 * restore overlaps the threads' round trips instead of adding them up.
 *
 * Arguments in memory go to a region of the shared scratch area that
 * belongs to the one thread; a thread whose arguments may not fit its
 * region (say, thousands of supplementary groups) is run on its own.
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

const isErrno = (r: bigint): boolean => r < 0n && r > -4096n;

/** Run a procedure in one thread, call after call, through its handle. */
export function runSteps(h: RestoreTaskHandle, make: (sh: StepHandle) => Steps): void {
  const sh: StepHandle = { pid: h.pid, tid: h.tracee.tid, putBytes: h.putBytes, putString: h.putString };
  const g = make(sh);
  let next = g.next();
  while (!next.done) {
    const c = next.value;
    const r = h.tracee.syscallRaw(c.nr, ...c.args);
    next = isErrno(r) ? g.throw(new RemoteSyscallError(c.name, Number(-r), h.tracee.tid)) : g.next(r);
  }
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
  const alone = items.filter((it) => it.putBytes > REGION_BYTES);
  for (const it of alone) runSteps(it.handle, it.make);
  const side = items.filter((it) => it.putBytes <= REGION_BYTES);
  const perBatch = Math.max(1, Math.floor(scratch.size / REGION_BYTES));
  for (let first = 0; first < side.length; first += perBatch) {
    runBatch(side.slice(first, first + perBatch), scratch.addr);
  }
}

function runBatch(batch: readonly SideSteps[], base: bigint): void {
  const running: { it: SideSteps; g: Steps; call: StepCall }[] = [];
  batch.forEach((it, i) => {
    const region = base + BigInt(i * REGION_BYTES);
    let off = 0;
    const putBytes = (b: Buffer): bigint => {
      const len = (b.length + 15) & ~15;
      if (len > REGION_BYTES) throw new CriuTsError('ERESTORE', `argument of ${b.length} bytes does not fit the scratch region`, { pid: it.tracee.tid });
      if (off + len > REGION_BYTES) off = 0;
      const a = region + BigInt(off);
      it.tracee.writeMem(a, b);
      off += len;
      return a;
    };
    const sh: StepHandle = { pid: it.pid, tid: it.tracee.tid, putBytes, putString: (s) => putBytes(Buffer.from(`${s}\0`)) };
    const g = it.make(sh);
    const first = g.next();
    if (!first.done) running.push({ it, g, call: first.value });
  });
  let live = running;
  while (live.length > 0) {
    const results = syscallEach(live.map((r) => ({ t: r.it.tracee, nr: r.call.nr, args: r.call.args })));
    const next: typeof live = [];
    live.forEach((r, i) => {
      const v = results[i] as bigint;
      const n = isErrno(v) ? r.g.throw(new RemoteSyscallError(r.call.name, Number(-v), r.it.tracee.tid)) : r.g.next(v);
      if (!n.done) next.push({ ...r, call: n.value });
    });
    live = next;
  }
}
