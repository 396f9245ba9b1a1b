/**
 * A task we hold in a ptrace stop: the compel of criu-ts. Small verb set:
 * seize (stop it), syscall (run one syscall inside it, held-task.ts),
 * mapScratch (memory of ours inside it), readMem/writeMem, selfCure (make
 * it survive our death), cure (put everything back) and detach/resume.
 * This file holds what the tracer owns inside the task: the scratch area
 * and the self-cure frame (sigframe.ts), and the cure that undoes both.
 */
import { parseStatus } from '../proc/status.js';
import { userShadowStackPossible } from '../proc/misc.js';
import {
  ptraceSeize, ptraceInterrupt, ptraceDetachQuiet, ptraceGetRegsetView, NT_X86_XSTATE, getGpRegsRaw, setGpRegsRaw,
  ptraceGetSigmask, ptraceSetSigmask, PTRACE_O, isSyscallError, EINVAL, EPERM, processVmWritev, NR, XSAVE_MAX_BYTES,
} from '../sys/index.js';
import { frameOffScratch, planFirstCall } from './first-call.js';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { buildSelfCure, frameSlotBytes, type SelfCure } from './sigframe.js';
import { faultPoint } from '../fault.js';
import { traceeObserver } from './observer.js';
import { HeldTask, HELD_SIGMASK, rd, type Arg } from './held-task.js';
import { RemoteSyscallError } from './remote-error.js';
import { waitForStop } from './stops.js';
import { abortRseqAtStop, type RseqAtStop } from './rseq.js';

export { HELD_SIGMASK } from './held-task.js';
export { RemoteSyscallError } from './remote-error.js';
export { waitForStop, collectExit } from './stops.js';

const log = logger('infect');

/** Scratch bytes before the frame of a thread armed alone by cure(): a siginfo is all it writes. */
const CURE_ARGS_BYTES = 4096;

export interface SeizeOptions {
  /** PTRACE_O_* options for PTRACE_SEIZE */
  options?: number;
  /** how long to wait for the task to stop */
  timeoutMs?: number;
  /** Leave the signal mask alone until selfCure() (dump targets): never our mask left if we die before it is armed. */
  selfCure?: boolean;
}

export class Tracee extends HeldTask {
  /** the thread's rseq state when seized (abortRseqAtStop); undefined without rseq */
  rseqAtStop: RseqAtStop | undefined;
  private scratch: { addr: bigint; size: number } | undefined;
  /** false for a scratch area another thread mapped (shareScratch): never unmapped from here */
  private scratchOwned = false;
  /** the armed frame, without its image once written (11 KiB per thread with AMX) */
  private cureFrame: Omit<SelfCure, 'image'> | undefined;
  /** what the armed frame was built from, kept by the scratch area's owner (moveFrameOutOfScratch) */
  private cureSource: { mask: bigint; xstate: Buffer } | undefined;
  /** a dump target: its scratch area and frames are reported to the guardian */
  private guarded = false;
  /**
   * A dump target not armed yet (selfCure): killed during an injected call
   * it would run on at a borrowed address with our registers. Nothing but
   * the mmap of its scratch area (the one window, docs/robustness.md) may
   * be injected until it is armed.
   */
  private awaitingArm = false;
  /** scratchRequest() asked for that mmap: the next injection may be it */
  private scratchMmapNext = false;
  /** The first call's frame (first-call.ts) below the main stack's red zone, and the bytes it covers, put back later. */
  private stackFrame: { slot: bigint; saved: Buffer } | undefined;
  /** writeSelfCure wrote a frame that enterSelfCure has not entered yet; the mask it read */
  private entering = false;
  private armMask: bigint | undefined;

  protected override beforeInject(nr: number): void {
    // Armed on its stack for the first call: every call is covered.
    if (!this.awaitingArm || this.stackFrame !== undefined) return;
    if (this.scratchMmapNext && nr === NR.mmap) {
      this.scratchMmapNext = false;
      return;
    }
    throw new CriuTsError('EINFECT', `task ${this.tid}: injected syscall ${nr} before the thread is armed with its self-cure frame`, { pid: this.tid, nr });
  }

  protected override armedInjectSp(): bigint | undefined {
    return this.cureFrame?.injectSp;
  }

  /** PTRACE_SEIZE + PTRACE_INTERRUPT and wait for the stop. */
  static seize(tid: number, opts: SeizeOptions = {}): Tracee {
    Tracee.seizeNoWait(tid, opts.options ?? 0);
    return Tracee.seizeWait(tid, opts.timeoutMs ?? 10_000, opts.selfCure ?? false);
  }

  /**
   * Seize and interrupt without waiting: for tasks in a frozen cgroup, whose
   * stop is reported only once the cgroup is thawed. Finish with seizeWait.
   */
  static seizeNoWait(tid: number, options = 0): void {
    // Syscall stops must be told apart from a real SIGTRAP.
    options |= PTRACE_O.TRACESYSGOOD;
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
  static seizeWait(tid: number, timeoutMs: number, selfCure = false): Tracee {
    try {
      const { stopSignal, stashed } = waitForStop(tid, timeoutMs);
      const regs = getGpRegsRaw(tid);
      // Before anything of ours runs in it: a thread inside an rseq critical section goes to its abort handler.
      return Tracee.taken({ tid, regs, stopSignal, stashed }, abortRseqAtStop(tid, regs), selfCure);
    } catch (e) {
      ptraceDetachQuiet(tid);
      throw e;
    }
  }

  /** A thread at its seize's stop, `rseq` its rseq state there, taken (seizeWait, seize.ts `seizeWaitEach`). */
  static taken(s: { tid: number; regs: Buffer; stopSignal: number; stashed: Buffer[] }, rseq: RseqAtStop | undefined, selfCure: boolean): Tracee {
    const t = new Tracee(s.tid, s.regs, s.stopSignal);
    t.rseqAtStop = rseq;
    t.stashedSignals.push(...s.stashed);
    t.deferBlock = t.guarded = t.awaitingArm = selfCure;
    return t;
  }

  /** Adopt a traced, stopped task (a clone's child); `bornHeld`: its maker's mask, which it copied, was HELD_SIGMASK (its first call blocks nothing). */
  static adopt(tid: number, bornHeld = false): Tracee {
    const t = new Tracee(tid, getGpRegsRaw(tid), 0);
    if (bornHeld) t.savedSigmask = HELD_SIGMASK;
    return t;
  }

  /** Bytes selfCure() needs for this thread's frame. */
  selfCureBytes(): number {
    return frameSlotBytes(ptraceGetRegsetView(this.tid, NT_X86_XSTATE, XSAVE_MAX_BYTES).length);
  }

  /**
   * Arm the self-cure (sigframe.ts): write this thread's own registers,
   * mask and FPU state as a signal frame at `slot` (scratch memory of at
   * least selfCureBytes(), 64-byte aligned) and keep the thread, from now
   * on, in a state where resuming it without us runs rt_sigreturn on that
   * frame. Only then are its signals blocked. Returns false (and blocks
   * the signals anyway) when the task lacks the gadgets or uses a shadow
   * stack; it is then driven as before, without the net. Many threads at
   * once: writeSelfCure each, the frames written, the guardian told of all
   * in one message (observer frames()), then enterSelfCure each.
   */
  selfCure(slot: bigint): boolean {
    const armed = this.writeSelfCure(slot);
    if (armed) traceeObserver()?.frame(this.tid, slot);
    this.enterSelfCure();
    return armed;
  }

  /**
   * selfCure's first half: the frame written at `slot`, or handed to `put`
   * (which writes it before enterSelfCure, or calls forgetSelfCure), the
   * thread not touched yet (true: there is a frame).
   */
  writeSelfCure(slot: bigint, put?: (at: bigint, image: Buffer) => void): boolean {
    const g = this.findGadgets(true);
    const mask = this.savedSigmask ?? ptraceGetSigmask(this.tid);
    this.armMask = mask;
    // A status read per thread only where a thread could have a shadow stack at all.
    const shstk = userShadowStackPossible() && parseStatus(this.tid).x86ThreadFeatures.includes('shstk');
    // Used at once (the frame is built from it); copied only where kept.
    const xstate = ptraceGetRegsetView(this.tid, NT_X86_XSTATE, XSAVE_MAX_BYTES);
    const kept = this.scratchOwned ? Buffer.from(xstate) : undefined;
    const sc = shstk ? undefined : buildSelfCure(slot, this.origRegs, mask, xstate, g);
    if (!sc) {
      log.info(`thread ${this.tid}: no self-cure (${shstk ? 'shadow stack' : 'no syscall;ret or sigreturn gadget'})`);
      return false;
    }
    if (put) put(slot, sc.image);
    else this.writeMem(slot, sc.image);
    this.cureFrame = { used: sc.used, injectSp: sc.injectSp, idleRegs: sc.idleRegs };
    this.entering = true;
    // Only the scratch area's owner moves its frame out before unmapping it (moveFrameOutOfScratch);
    // the others' XSAVE copies (11 KiB each with AMX) would only be held.
    this.cureSource = kept ? { mask, xstate: kept } : undefined;
    return true;
  }

  /** A frame handed to writeSelfCure's `put` that was not written: the thread goes on without one. */
  forgetSelfCure(): void {
    this.cureFrame = this.cureSource = undefined;
    this.entering = false;
  }

  /**
   * selfCure's second half, once the guardian knows the frame: the thread
   * left where resuming it runs the frame's sigreturn, its signals blocked.
   */
  enterSelfCure(): void {
    if (this.entering && this.cureFrame) {
      this.entering = false;
      setGpRegsRaw(this.tid, this.cureFrame.idleRegs);
      this.dropStackFrame();
    }
    this.deferBlock = false;
    this.awaitingArm = false;
    if (this.savedSigmask === undefined) this.blockSignals(this.armMask);
    this.armMask = undefined;
  }

  /** The thread carries an armed self-cure frame. */
  get selfCured(): boolean {
    return this.cureFrame !== undefined;
  }

  /** Map an RW anonymous scratch area inside the task for syscall arguments. */
  mapScratch(size = 1 << 16, at?: bigint): bigint {
    const req = this.scratchRequest(size, at);
    if (req === undefined) return (this.scratch as { addr: bigint }).addr;
    return this.scratchMade(this.syscallRaw(req.nr, ...req.args), size);
  }

  /**
   * First half of mapScratch, for side-by-side use (syscallEach): the mmap
   * to inject, or undefined when a big enough area is there already.
   */
  scratchRequest(size: number, at?: bigint): { nr: number; args: Arg[] } | undefined {
    size = Math.ceil(size / 4096) * 4096; // the mapping's real size, as /proc/PID/maps shows it
    if (this.scratch && this.scratch.size >= size && (at === undefined || at === this.scratch.addr)) return undefined;
    if (this.scratch && !this.scratchOwned) {
      throw new CriuTsError('EINFECT', `task ${this.tid}: shared scratch area too small (${this.scratch.size} < ${size})`, { pid: this.tid });
    }
    if (this.cureFrame) throw new CriuTsError('EINFECT', `task ${this.tid}: scratch area holds the self-cure frame`, { pid: this.tid });
    if (this.scratch) this.unmapScratch();
    // A dump target's first call: covered by a frame on its own stack, at an address told beforehand.
    if (this.guarded && this.awaitingArm && at === undefined) at = this.armOnStack(size);
    // MAP_SHARED|MAP_ANONYMOUS: a shmem-backed area never merges with the
    // task's own anonymous mappings, so the dump can leave it out exactly.
    // With `at`, MAP_FIXED_NOREPLACE puts it in a hole the caller chose.
    const flags = 0x21 | (at === undefined ? 0 : 0x100000);
    this.scratchMmapNext = true;
    return { nr: NR.mmap, args: [at ?? 0, size, 3 /* RW */, flags, -1, 0] };
  }

  /**
   * Arm the thread for its first call (first-call.ts): its self-cure frame
   * below the red zone of the main stack, and the address of the area to
   * make told to the guardian before the call. Returns that address, or
   * undefined when the thread cannot be covered so (the call then runs
   * without the net, as before; the log says so).
   */
  private armOnStack(size: number): bigint | undefined {
    const plan = planFirstCall(this.tid, this.origRegs, this.findGadgets(true), size);
    if (typeof plan === 'string') {
      log.info(`task ${this.tid}: first injected call not covered (${plan})`);
      return undefined;
    }
    this.stackFrame = { slot: plan.slot, saved: plan.saved };
    this.cureFrame = plan.frame;
    const obs = traceeObserver();
    obs?.frame(this.tid, plan.slot);
    obs?.scratch(this.tid, plan.at, plan.size);
    return plan.at;
  }

  /** The first call's frame is not needed any more (the registers lead elsewhere): its stack bytes put back. */
  private dropStackFrame(): void {
    const f = this.stackFrame;
    if (f === undefined) return;
    this.stackFrame = undefined;
    try {
      processVmWritev(this.tid, f.saved, 0, [{ addr: f.slot, len: f.saved.length }]);
    } catch {
      // the task is gone: nothing to put back
    }
  }

  /** Second half: take the area the injected mmap of scratchRequest returned (raw result). */
  scratchMade(result: bigint, size: number): bigint {
    if (result < 0n && result > -4096n) throw new RemoteSyscallError('mmap', Number(-result), this.tid);
    size = Math.ceil(size / 4096) * 4096;
    this.scratch = { addr: result, size };
    this.scratchOwned = true;
    if (this.guarded) traceeObserver()?.scratch(this.tgid(), result, size);
    return result;
  }

  /** The scratch mapping, if any: dump leaves it out of the task's memory. */
  get scratchRange(): { addr: bigint; size: number } | undefined {
    return this.scratch;
  }

  get scratchAddr(): bigint {
    if (!this.scratch) throw new CriuTsError('EINFECT', `task ${this.tid}: no scratch area`, { pid: this.tid });
    return this.scratch.addr;
  }

  /** Unmap our scratch area (a shared one is only forgotten: its owner unmaps it). */
  unmapScratch(): void {
    if (!this.scratch) return;
    if (this.scratchOwned) {
      this.syscall('munmap', NR.munmap, this.scratch.addr, this.scratch.size);
      if (this.guarded) traceeObserver()?.unmapped(this.tgid());
    }
    this.scratch = undefined;
    this.scratchOwned = false;
  }

  /**
   * unmapScratch side by side (syscallEach): the munmap to inject (undefined: nothing of ours), the area
   * forgotten at once. Not for a dump target, whose areas the guardian is told about.
   */
  scratchUnmapRequest(): { nr: number; args: Arg[] } | undefined {
    if (this.guarded) throw new CriuTsError('EINFECT', `task ${this.tid}: a dump target's scratch goes through unmapScratch`, { pid: this.tid });
    const s = this.scratch;
    const owned = this.scratchOwned;
    this.scratch = undefined;
    this.scratchOwned = false;
    return s && owned ? { nr: NR.munmap, args: [s.addr, s.size] } : undefined;
  }

  /** Use a scratch area another thread of the same address space mapped; `own`: this task's copy of its parent's, made by its fork. */
  shareScratch(range: { addr: bigint; size: number }, own = false): void {
    this.scratch = { ...range };
    this.scratchOwned = own;
  }

  /** Forget the scratch area without unmapping (its mapping was replaced wholesale). */
  dropScratch(): void {
    this.scratch = undefined;
    this.scratchOwned = false;
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
   * Threads sharing a scratch area are cured before its owner, whose cure
   * unmaps it (their self-cure frames live there).
   */
  cure(): void {
    // Take the list first: signals arriving while we re-queue stay queued (all blocked), not stashed again.
    const stashed = this.stashedSignals.splice(0);
    let failed: unknown;
    try {
      if (stashed.length > 0) {
        // Re-queueing is injected: a thread never armed (failed between seize and armTree) is armed alone first.
        if (this.awaitingArm) this.selfCure(this.mapScratch(CURE_ARGS_BYTES + this.selfCureBytes()) + BigInt(CURE_ARGS_BYTES));
        this.deferBlock = false;
        const pid = this.tgid();
        const a = this.scratch?.addr ?? this.mapScratch();
        for (const si of stashed) {
          this.writeMem(a, si);
          const sig = si.readInt32LE(0);
          this.syscallRaw(NR.rt_tgsigqueueinfo, pid, this.tid, sig, a);
        }
      }
      faultPoint('cure');
      if (this.scratchOwned) this.moveFrameOutOfScratch();
      this.unmapScratch();
    } catch (e) {
      // Registers and mask go back whatever happened: an armed thread let go would otherwise run its
      // sigreturn from a scratch area its main thread is about to unmap. (A failed owner keeps its area.)
      failed = e;
    }
    setGpRegsRaw(this.tid, this.origRegs);
    this.cureFrame = undefined;
    this.dropStackFrame();
    if (this.savedSigmask !== undefined) ptraceSetSigmask(this.tid, this.savedSigmask);
    if (failed !== undefined) throw failed;
  }

  /** The owner's frame lives in the scratch area it is about to unmap: moved first (first-call.ts frameOffScratch). */
  private moveFrameOutOfScratch(): void {
    const src = this.cureSource;
    const g = this.gadgets;
    if (!this.cureFrame || !src || !g || !this.scratch) return;
    const at = this.scratch.addr;
    this.syscall('sigaltstack', NR.sigaltstack, 0, at);
    const sc = frameOffScratch(this.tid, this.origRegs, this.cureFrame.used, src, g, this.readMem(at, 24));
    if (!sc) {
      log.debug(`thread ${this.tid}: no room for the self-cure frame beside its stack; it stays in the scratch area`);
      return;
    }
    setGpRegsRaw(this.tid, sc.idleRegs);
    this.cureFrame = { used: sc.used, injectSp: sc.injectSp, idleRegs: sc.idleRegs };
  }
}
