/**
 * A task we hold in a ptrace stop: the compel of criu-ts. Small verb set:
 * seize (stop it), syscall (run one syscall inside it), mapScratch (memory
 * of ours inside it), readMem/writeMem, cure (put everything back) and
 * detach/resume.
 *
 * How a syscall is injected without writing code into the target: any byte
 * pair 0f 05 in executable memory decodes as `syscall` when jumped to, so we
 * find one (the vDSO first, then any r-x mapping), point rip at it with the
 * syscall number and arguments in registers and orig_rax = -1 (so the
 * kernel's restart logic leaves our registers alone on resume), single-step
 * once and read rax. One round trip per call, and the target's text is never
 * modified.
 */
import { readFileSync } from 'node:fs';
import {
  ptraceSeize, ptraceInterrupt, ptraceSingleStep, ptraceCont, ptraceDetach, ptraceDetachQuiet,
  getGpRegsRaw, setGpRegsRaw, ptraceGetSiginfo, ptraceGetEventMsg, ptraceGetSigmask, ptraceSetSigmask, waitPid, __WALL, WNOHANG, PTRACE_EVENT,
  regOffset, processVmReadv, tgkill, PTRACE_O, isSyscallError, EINVAL, EPERM, processVmWritev, ProcMem, sleepMs, NR, errnoName, SIGINFO_SIZE,
} from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';

const log = logger('infect');

export const SIGTRAP = 5;
export const SIGSTOP = 19;
export const SIGKILL = 9;

/**
 * The signal mask while we drive a task: everything but SIGTRAP. A
 * single-step trap is a forced SIGTRAP, and the kernel resets the handler
 * of a forced signal that is blocked (force_sig_info_to_task), so blocking
 * it would silently turn the task's SIGTRAP handler into SIG_DFL.
 * The kernel keeps SIGKILL and SIGSTOP deliverable anyway.
 */
export const HELD_SIGMASK = BigInt.asUintN(64, ~(1n << BigInt(SIGTRAP - 1)));

/** True for a siginfo that a task or the kernel queued as a signal (not one of our own single-step traps). */
export function isQueuedSignal(si: Buffer): boolean {
  return si.readInt32LE(0) !== SIGTRAP || si.readInt32LE(8) <= 0;
}

/** A syscall run inside the target returned -errno. */
export class RemoteSyscallError extends CriuTsError {
  constructor(readonly syscall: string, readonly errno: number, readonly pid: number) {
    super('EINFECT', `${syscall} in task ${pid}: ${errnoName(errno)}`, { syscall, errno, errnoName: errnoName(errno), pid });
    this.name = 'RemoteSyscallError';
  }
}

export interface SeizeOptions {
  /** PTRACE_O_* options for PTRACE_SEIZE */
  options?: number;
  /** how long to wait for the task to stop */
  timeoutMs?: number;
}

type Arg = number | bigint;

function rd(buf: Buffer, name: Parameters<typeof regOffset>[0]): bigint {
  return buf.readBigUInt64LE(regOffset(name));
}
function wr(buf: Buffer, name: Parameters<typeof regOffset>[0], v: bigint): void {
  buf.writeBigUInt64LE(BigInt.asUintN(64, v), regOffset(name));
}

export class Tracee {
  /** registers exactly as they were at the stop */
  readonly origRegs: Buffer;
  /** siginfos dequeued by our stops (signal-delivery-stops); re-queued on cure, or dumped */
  readonly stashedSignals: Buffer[] = [];
  /** ptrace events (PTRACE_EVENT_FORK/CLONE...) seen during injected syscalls, with their messages */
  readonly events: { event: number; msg: bigint }[] = [];
  /** the task was in a group-stop (e.g. SIGSTOPped) when we seized it */
  readonly wasStopped: boolean;
  /** the signal of that group-stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU), 0 when it was running */
  readonly stopSignal: number;
  private gadget: bigint | undefined;
  private scratch: { addr: bigint; size: number } | undefined;
  private readonly work: Buffer;
  private detached = false;
  private savedSigmask: bigint | undefined;

  private constructor(readonly tid: number, origRegs: Buffer, stopSignal: number) {
    this.origRegs = Buffer.from(origRegs);
    this.work = Buffer.from(origRegs);
    this.wasStopped = stopSignal !== 0;
    this.stopSignal = stopSignal;
  }

  /** PTRACE_SEIZE + PTRACE_INTERRUPT and wait for the stop. */
  static seize(tid: number, opts: SeizeOptions = {}): Tracee {
    Tracee.seizeNoWait(tid, opts.options ?? 0);
    return Tracee.seizeWait(tid, opts.timeoutMs ?? 10_000);
  }

  /**
   * Seize and interrupt without waiting: for tasks in a frozen cgroup, whose
   * stop is reported only once the cgroup is thawed. Finish with seizeWait.
   */
  static seizeNoWait(tid: number, options = 0): void {
    // Seccomp filters of the task must not see our injected syscalls:
    // suspend them while we trace it (needs CAP_SYS_ADMIN; best effort).
    try {
      ptraceSeize(tid, options | PTRACE_O.SUSPEND_SECCOMP);
    } catch (e) {
      if (!isSyscallError(e, EINVAL) && !isSyscallError(e, EPERM)) throw e;
      ptraceSeize(tid, options);
    }
    ptraceInterrupt(tid);
  }

  /** Second half of seizeNoWait: wait for the stop and take the task. */
  static seizeWait(tid: number, timeoutMs: number): Tracee {
    try {
      const { stopSignal, stashed } = waitForStop(tid, timeoutMs);
      const t = new Tracee(tid, getGpRegsRaw(tid), stopSignal);
      t.stashedSignals.push(...stashed);
      t.blockSignals();
      return t;
    } catch (e) {
      ptraceDetachQuiet(tid);
      throw e;
    }
  }

  /** Adopt a task that is already traced and stopped (e.g. a child reported by PTRACE_EVENT_CLONE). */
  static adopt(tid: number): Tracee {
    return new Tracee(tid, getGpRegsRaw(tid), 0);
  }

  /**
   * Block every signal but SIGTRAP while we drive the task (HELD_SIGMASK):
   * a signal arriving meanwhile stays queued, is seen as pending by a dump,
   * and is delivered after cure, instead of interrupting our injected calls.
   * A SIGTRAP sent to the task meanwhile is taken by our next step and
   * stashed. `origSigmask` is the task's own mask.
   */
  private blockSignals(): void {
    this.savedSigmask = ptraceGetSigmask(this.tid);
    ptraceSetSigmask(this.tid, HELD_SIGMASK);
  }

  /** The task's signal mask as it was when seized. */
  get origSigmask(): bigint {
    return this.savedSigmask ?? ptraceGetSigmask(this.tid);
  }

  get rip(): bigint {
    return rd(this.origRegs, 'ip');
  }

  /** Current registers (raw user_regs_struct) from the kernel. */
  currentRegs(): Buffer {
    return getGpRegsRaw(this.tid);
  }

  setRegs(regs: Buffer): void {
    setGpRegsRaw(this.tid, regs);
  }

  /** Where injected syscalls jump to; found lazily. */
  get gadgetAddr(): bigint {
    return this.findGadget();
  }

  setGadget(address: bigint): void {
    this.gadget = address;
  }

  /** Find a new gadget outside `ranges` (e.g. before they are unmapped). */
  moveGadgetOutOf(ranges: readonly { start: bigint; end: bigint }[]): void {
    this.gadget = undefined;
    this.findGadget(ranges);
  }

  private findGadget(avoid: readonly { start: bigint; end: bigint }[] = []): bigint {
    if (this.gadget !== undefined) return this.gadget;
    const maps = readFileSync(`/proc/${this.tid}/maps`, 'latin1').split('\n');
    const exec = maps
      .map((l) => l.split(/\s+/))
      .filter((f) => (f[1] ?? '').includes('x') && f[0] !== undefined)
      .sort((a, b) => Number((b[5] === '[vdso]') ) - Number(a[5] === '[vdso]'));
    for (const f of exec) {
      if (f[5] === '[vsyscall]') continue;
      const [s, e] = (f[0] ?? '').split('-').map((x) => BigInt('0x' + x)) as [bigint, bigint];
      if (avoid.some((r) => s < r.end && r.start < e)) continue;
      const len = Number(e - s > 65536n ? 65536n : e - s);
      const buf = Buffer.alloc(len);
      let n = 0;
      try {
        n = processVmReadv(this.tid, buf, 0, [{ addr: s, len }]);
      } catch {
        continue;
      }
      const i = buf.subarray(0, n).indexOf(Buffer.from([0x0f, 0x05]));
      if (i >= 0) {
        this.gadget = s + BigInt(i);
        log.debug(`task ${this.tid}: syscall gadget at 0x${this.gadget.toString(16)} in ${f[5] ?? 'anon'}`);
        return this.gadget;
      }
    }
    throw new CriuTsError('EINFECT', `task ${this.tid}: no executable syscall instruction found`, { pid: this.tid });
  }

  /** Run one syscall inside the task; returns the raw (signed) result. */
  syscallRaw(nr: number, ...args: Arg[]): bigint {
    const gadget = this.findGadget();
    const w = this.work;
    this.origRegs.copy(w);
    wr(w, 'ip', gadget);
    wr(w, 'ax', BigInt(nr));
    wr(w, 'orig_ax', -1n);
    const names = ['di', 'si', 'dx', 'r10', 'r8', 'r9'] as const;
    names.forEach((n, i) => wr(w, n, BigInt(args[i] ?? 0)));
    setGpRegsRaw(this.tid, w);
    for (let tries = 0; ; tries++) {
      ptraceSingleStep(this.tid);
      const st = waitPid(this.tid, __WALL);
      if (st === null) continue;
      if (st.exited || st.signaled) {
        throw new CriuTsError('EINFECT', `task ${this.tid} died during injected syscall ${nr}`, { pid: this.tid, nr });
      }
      if (st.event !== 0 && st.event !== PTRACE_EVENT.STOP) {
        // fork/clone/exec events of an injected clone3: remember, keep stepping.
        this.events.push({ event: st.event, msg: ptraceGetEventMsg(this.tid) });
        continue;
      }
      const regs = getGpRegsRaw(this.tid);
      const ip = rd(regs, 'ip');
      // A signal that arrived meanwhile is kept for later and suppressed now
      // (our own single-step traps are SIGTRAPs with a positive si_code).
      if (st.event === 0) {
        const si = ptraceGetSiginfo(this.tid);
        if (st.stopSig !== SIGTRAP || isQueuedSignal(si)) this.stashedSignals.push(si);
      }
      if (ip === gadget + 2n) return BigInt.asIntN(64, rd(regs, 'ax'));
      if (ip !== gadget || tries > 100) {
        throw new CriuTsError('EINFECT', `task ${this.tid}: injected syscall ${nr} stopped at 0x${ip.toString(16)} (status 0x${st.raw.toString(16)})`, { pid: this.tid, nr });
      }
    }
  }

  /** Run a syscall; throw RemoteSyscallError on failure. */
  syscall(name: string, nr: number, ...args: Arg[]): bigint {
    const r = this.syscallRaw(nr, ...args);
    if (r < 0n && r > -4096n) throw new RemoteSyscallError(name, Number(-r), this.tid);
    return r;
  }

  /** Map an RW anonymous scratch area inside the task for syscall arguments. */
  mapScratch(size = 1 << 16, at?: bigint): bigint {
    if (this.scratch && this.scratch.size >= size && (at === undefined || at === this.scratch.addr)) return this.scratch.addr;
    if (this.scratch) this.unmapScratch();
    // MAP_SHARED|MAP_ANONYMOUS: a shmem-backed area never merges with the
    // task's own anonymous mappings, so the dump can leave it out exactly.
    // With `at`, MAP_FIXED_NOREPLACE puts it in a hole the caller chose.
    const flags = 0x21 | (at === undefined ? 0 : 0x100000);
    const a = this.syscall('mmap', NR.mmap, at ?? 0, size, 3 /* RW */, flags, -1, 0);
    this.scratch = { addr: a, size };
    return a;
  }

  /** The scratch mapping, if any: dump leaves it out of the task's memory. */
  get scratchRange(): { addr: bigint; size: number } | undefined {
    return this.scratch;
  }

  get scratchAddr(): bigint {
    if (!this.scratch) throw new CriuTsError('EINFECT', `task ${this.tid}: no scratch area`, { pid: this.tid });
    return this.scratch.addr;
  }

  unmapScratch(): void {
    if (!this.scratch) return;
    this.syscall('munmap', NR.munmap, this.scratch.addr, this.scratch.size);
    this.scratch = undefined;
  }

  /** Use a scratch area another thread of the same address space mapped. */
  shareScratch(range: { addr: bigint; size: number }): void {
    this.scratch = { ...range };
  }

  /** Forget the scratch area without unmapping (its mapping was replaced wholesale). */
  dropScratch(): void {
    this.scratch = undefined;
  }

  readMem(address: bigint, len: number): Buffer {
    const b = Buffer.alloc(len);
    const n = processVmReadv(this.tid, b, 0, [{ addr: address, len }]);
    if (n === len) return b;
    const m = new ProcMem(this.tid);
    try {
      m.read(address, b);
    } finally {
      m.close();
    }
    return b;
  }

  writeMem(address: bigint, data: Buffer): void {
    let n = 0;
    try {
      n = processVmWritev(this.tid, data, 0, [{ addr: address, len: data.length }]);
    } catch {
      n = 0;
    }
    if (n === data.length) return;
    const m = new ProcMem(this.tid, true);
    try {
      m.write(address, data);
    } finally {
      m.close();
    }
  }

  /** Copy `data` into scratch at `offset` and return its remote address. */
  putScratch(data: Buffer, offset = 0): bigint {
    const a = this.scratchAddr + BigInt(offset);
    this.writeMem(a, data);
    return a;
  }

  /**
   * Put the task back exactly as it was: unmap scratch, re-queue signals our
   * stops dequeued (rt_tgsigqueueinfo keeps their siginfo), restore registers.
   */
  cure(): void {
    if (this.savedSigmask === undefined) this.blockSignals();
    // Take the list first: signals arriving while we re-queue stay queued
    // (everything is blocked), they are not stashed again.
    const stashed = this.stashedSignals.splice(0);
    // A SIGTRAP cannot be queued from inside: our next step would take it
    // again. It is sent from outside once we are done (its sender becomes us).
    const traps = stashed.filter((si) => si.readInt32LE(0) === SIGTRAP);
    const pid = this.tgid();
    if (stashed.length > traps.length) {
      const a = this.mapScratch();
      for (const si of stashed) {
        const sig = si.readInt32LE(0);
        if (sig === SIGTRAP) continue;
        this.writeMem(a, si);
        this.syscallRaw(NR.rt_tgsigqueueinfo, pid, this.tid, sig, a);
      }
    }
    this.unmapScratch();
    if (traps.length > 0) {
      log.warn(`task ${this.tid}: a SIGTRAP that arrived while it was held is sent again by criu-ts (its sender changes)`);
      tgkill(pid, this.tid, SIGTRAP);
    }
    setGpRegsRaw(this.tid, this.origRegs);
    ptraceSetSigmask(this.tid, this.savedSigmask ?? 0n);
  }

  tgid(): number {
    const m = /\nTgid:\s+(\d+)/.exec(readFileSync(`/proc/${this.tid}/status`, 'latin1'));
    return m ? Number(m[1]) : this.tid;
  }

  /** Let it run again; a task that was stopped when seized stays stopped. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    ptraceDetach(this.tid, this.stopSignal);
  }

  detachQuiet(): void {
    if (this.detached) return;
    this.detached = true;
    ptraceDetachQuiet(this.tid, this.stopSignal);
  }

  /** Resume without detaching (used when handing a restored task its final registers). */
  cont(sig = 0): void {
    ptraceCont(this.tid, sig);
  }

  /**
   * Move the held thread into a stop inside the kernel's signal delivery
   * (PTRACE_INTERRUPT's event stop, reached without returning to user
   * space). Registers set here are the ones the kernel's syscall-restart
   * logic sees when the thread resumes: a thread given rax = -ERESTART*
   * and orig_rax = its syscall then restarts it, or fails it with EINTR
   * when a signal handler runs first, exactly as if it had never stopped.
   */
  stopInSignalDelivery(timeoutMs = 10_000): void {
    ptraceInterrupt(this.tid);
    ptraceCont(this.tid, 0);
    waitForStop(this.tid, timeoutMs);
  }
}

/**
 * Wait for the PTRACE_EVENT_STOP that follows PTRACE_INTERRUPT. A pending
 * signal may be reported first (signal-delivery-stop): its siginfo is kept
 * and the signal suppressed, to be re-queued on cure or dumped as pending.
 */
export function waitForStop(tid: number, timeoutMs: number): { stopSignal: number; stashed: Buffer[] } {
  const stashed: Buffer[] = [];
  const deadline = Date.now() + timeoutMs;
  let delay = 0.02;
  for (;;) {
    const st = waitPid(tid, __WALL | WNOHANG);
    if (st === null) {
      if (Date.now() > deadline) throw new CriuTsError('ETIMEOUT', `task ${tid} did not stop within ${timeoutMs} ms`, { pid: tid });
      sleepMs(delay);
      delay = Math.min(delay * 2, 20);
      continue;
    }
    if (st.exited || st.signaled) throw new CriuTsError('ENOTASK', `task ${tid} exited while being stopped`, { pid: tid });
    if (st.event === PTRACE_EVENT.STOP) {
      // Group-stop is reported as EVENT_STOP with a stop signal (SIGSTOP/SIGTSTP/...); a plain interrupt with SIGTRAP.
      const sig = st.stopSig;
      return { stopSignal: sig === SIGTRAP ? 0 : sig, stashed };
    }
    if (st.event === 0 && st.stopSig !== 0) {
      const si = ptraceGetSiginfo(tid);
      if (si.length === SIGINFO_SIZE) stashed.push(si);
      ptraceCont(tid, 0);
      continue;
    }
    ptraceCont(tid, 0);
  }
}

/**
 * As tracer, collect a traced task's death (after SIGKILL or exit), so that
 * its real parent can see it. For a thread group, collect every other
 * thread first: the kernel reports the leader's death only after theirs.
 */
export function collectExit(tid: number): void {
  for (;;) {
    try {
      const st = waitPid(tid, __WALL);
      if (st === null || st.exited || st.signaled) return;
    } catch {
      return; // ECHILD: already collected, or not ours
    }
  }
}
