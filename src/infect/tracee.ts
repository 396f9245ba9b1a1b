/**
 * A task we hold in a ptrace stop: the compel of criu-ts. Small verb set:
 * seize (stop it), syscall (run one syscall inside it), mapScratch (memory
 * of ours inside it), readMem/writeMem, selfCure (make it survive our
 * death), cure (put everything back) and detach/resume.
 *
 * How a syscall is injected without writing code into the target: any byte
 * pair 0f 05 in executable memory decodes as `syscall` when jumped to, so we
 * find one (gadgets.ts), point rip at it with the syscall number and
 * arguments in registers and orig_rax = -1 (so the kernel's restart logic
 * leaves our registers alone on resume), resume with PTRACE_SYSCALL and read
 * rax at the syscall-exit stop. The target's text is never modified.
 *
 * Why syscall stops and not a single step: a single step leaves the trap
 * flag (and the kernel's syscall-exit trap) set in the task until the next
 * ptrace request; if criu-ts dies in between, the task is killed by the
 * SIGTRAP. Syscall tracing is dropped by the kernel with the tracer. It
 * also raises no signal at all, so a task's SIGTRAP handler is never
 * touched (a forced SIGTRAP resets a blocked or ignored handler).
 */
import { readFileSync } from 'node:fs';
import {
  ptraceSeize, ptraceInterrupt, ptraceSyscall, ptraceCont, ptraceDetach, ptraceDetachQuiet, ptraceGetRegset,
  NT_X86_XSTATE, getGpRegsRaw, setGpRegsRaw, ptraceGetSiginfo, ptraceGetEventMsg, ptraceGetSigmask, ptraceSetSigmask,
  waitPid, __WALL, WNOHANG, PTRACE_EVENT, regOffset, PTRACE_O, isSyscallError, EINVAL, EPERM, processVmReadv,
  processVmWritev, ProcMem, sleepMs, NR, errnoName, SIGINFO_SIZE, SIGTRAP, SIGSTOP, SIGKILL, XSAVE_MAX_BYTES,
} from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { findGadgets, type Gadgets } from './gadgets.js';
import { buildSelfCure, frameSlotBytes, type SelfCure } from './sigframe.js';
import { faultPoint } from '../fault.js';
import { traceeObserver } from './observer.js';

const log = logger('infect');

/** stop signal of a syscall-entry/exit stop with PTRACE_O_TRACESYSGOOD */
const SYSCALL_STOP = SIGTRAP | 0x80;
/** Biggest XSAVE area we ask for; the kernel returns the real size. */

/**
 * The signal mask while we drive a task: every signal. Our stops raise
 * none (syscall, event and interrupt stops are ptrace's own), and no
 * target is single-stepped (infect/cpuid.ts runs cpuid in a process of
 * ours), so a SIGTRAP too stays queued where it was, shared or private,
 * and is dumped as pending like any other. The kernel keeps SIGKILL and
 * SIGSTOP deliverable anyway.
 */
export const HELD_SIGMASK = BigInt.asUintN(64, ~0n);

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
  /**
   * Leave the signal mask alone until selfCure() (dump targets): a task
   * must never be left with our mask if we die before it is armed.
   */
  selfCure?: boolean;
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
  private gadgets: Gadgets | undefined;
  private scratch: { addr: bigint; size: number } | undefined;
  /** false for a scratch area another thread mapped (shareScratch): never unmapped from here */
  private scratchOwned = false;
  private readonly work: Buffer;
  private detached = false;
  private savedSigmask: bigint | undefined;
  /** the armed self-cure frame (see sigframe.ts), if any, and what it was built from */
  /** the armed frame, without its image once written (11 KiB per thread with AMX) */
  private cureFrame: Omit<SelfCure, 'image'> | undefined;
  private cureSource: { mask: bigint; xstate: Buffer } | undefined;
  /** signals are blocked only by selfCure(), not by the first injected call */
  private deferBlock = false;
  /** a dump target: its scratch area and frames are reported to the guardian */
  private guarded = false;
  /** the injected syscall under way between syscallBegin() and its last syscallStep() */
  private inflight: { nr: number; gadget: bigint; entered: boolean; tries: number } | undefined;

  private constructor(readonly tid: number, origRegs: Buffer, stopSignal: number) {
    this.origRegs = Buffer.from(origRegs);
    this.work = Buffer.from(origRegs);
    this.wasStopped = stopSignal !== 0;
    this.stopSignal = stopSignal;
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
      const t = new Tracee(tid, getGpRegsRaw(tid), stopSignal);
      t.stashedSignals.push(...stashed);
      t.deferBlock = selfCure;
      t.guarded = selfCure;
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
   * Block every signal while we drive the task (HELD_SIGMASK): a signal
   * arriving meanwhile stays queued, is seen as pending by a dump, and is
   * delivered after cure, instead of interrupting our injected calls.
   * `origSigmask` is the task's own mask.
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
    return this.findGadgets().syscall;
  }

  /** Use this `syscall` instruction (e.g. a restored task's vDSO moved); forgets the other gadgets. */
  setGadget(address: bigint): void {
    this.gadgets = { syscall: address };
  }

  /** Find a new gadget outside `ranges` (e.g. before they are unmapped). */
  moveGadgetOutOf(ranges: readonly { start: bigint; end: bigint }[]): void {
    const g = findGadgets(this.tid, false, ranges);
    if (!g) throw new CriuTsError('EINFECT', `task ${this.tid}: no executable syscall instruction found`, { pid: this.tid });
    this.gadgets = g;
  }

  /** Share the gadgets another thread of the same address space found. */
  shareGadgets(from: Tracee): void {
    this.gadgets = from.findGadgets(true);
  }

  private findGadgets(full = false): Gadgets {
    if (this.gadgets !== undefined && (!full || this.gadgets.syscallRet !== undefined)) return this.gadgets;
    const g = findGadgets(this.tid, full);
    if (!g) throw new CriuTsError('EINFECT', `task ${this.tid}: no executable syscall instruction found`, { pid: this.tid });
    log.debug(`task ${this.tid}: syscall gadget at 0x${g.syscall.toString(16)}`);
    this.gadgets = g;
    return g;
  }

  /** Bytes selfCure() needs for this thread's frame. */
  selfCureBytes(): number {
    return frameSlotBytes(ptraceGetRegset(this.tid, NT_X86_XSTATE, XSAVE_MAX_BYTES).length);
  }

  /**
   * Arm the self-cure (sigframe.ts): write this thread's own registers,
   * mask and FPU state as a signal frame at `slot` (scratch memory of at
   * least selfCureBytes(), 64-byte aligned) and keep the thread, from now
   * on, in a state where resuming it without us runs rt_sigreturn on that
   * frame. Only then are its signals blocked. Returns false (and blocks
   * the signals anyway) when the task lacks the gadgets or uses a shadow
   * stack; it is then driven as before, without the net.
   */
  selfCure(slot: bigint): boolean {
    const g = this.findGadgets(true);
    const mask = this.savedSigmask ?? ptraceGetSigmask(this.tid);
    const status = readFileSync(`/proc/${this.tid}/status`, 'latin1');
    const shstk = /\nx86_Thread_features:[^\n]*shstk/.test(status);
    const xstate = ptraceGetRegset(this.tid, NT_X86_XSTATE, XSAVE_MAX_BYTES);
    const sc = shstk ? undefined : buildSelfCure(slot, this.origRegs, mask, xstate, g);
    if (sc) {
      this.writeMem(slot, sc.image);
      setGpRegsRaw(this.tid, sc.idleRegs);
      this.cureFrame = { used: sc.used, injectSp: sc.injectSp, idleRegs: sc.idleRegs };
      // Only the scratch area's owner moves its frame out before unmapping
      // it (moveFrameOutOfScratch); the others' XSAVE copies (11 KiB each
      // with AMX) would only be held.
      this.cureSource = this.scratchOwned ? { mask, xstate } : undefined;
      traceeObserver()?.frame(this.tid, slot);
    } else {
      log.info(`thread ${this.tid}: no self-cure (${shstk ? 'shadow stack' : 'no syscall;ret or sigreturn gadget'})`);
    }
    this.deferBlock = false;
    if (this.savedSigmask === undefined) this.blockSignals();
    return sc !== undefined;
  }

  /** The thread carries an armed self-cure frame. */
  get selfCured(): boolean {
    return this.cureFrame !== undefined;
  }

  /** Run one syscall inside the task; returns the raw (signed) result. */
  syscallRaw(nr: number, ...args: Arg[]): bigint {
    this.syscallBegin(nr, args);
    for (;;) {
      const r = this.syscallStep();
      if (r !== undefined) return r;
    }
  }

  /**
   * First half of an injected syscall: registers set and the task resumed
   * toward it. syscallStep() then collects its stops; syscallEach() runs
   * one call in many tasks this way, side by side.
   */
  syscallBegin(nr: number, args: readonly Arg[]): void {
    if (this.inflight !== undefined) throw new CriuTsError('EINFECT', `task ${this.tid}: injected syscall ${this.inflight.nr} still running`, { pid: this.tid, nr });
    if (this.savedSigmask === undefined && !this.deferBlock) this.blockSignals();
    const cf = this.cureFrame;
    const g = this.findGadgets();
    // Armed: run the `syscall; ret` whose ret lands in the self-cure frame.
    const gadget = cf ? (g.syscallRet as bigint) : g.syscall;
    const w = this.work;
    this.origRegs.copy(w);
    wr(w, 'ip', gadget);
    wr(w, 'ax', BigInt(nr));
    wr(w, 'orig_ax', -1n);
    if (cf) wr(w, 'sp', cf.injectSp);
    const names = ['di', 'si', 'dx', 'r10', 'r8', 'r9'] as const;
    names.forEach((n, i) => wr(w, n, BigInt(args[i] ?? 0)));
    setGpRegsRaw(this.tid, w);
    faultPoint('inject');
    this.inflight = { nr, gadget, entered: false, tries: 0 };
    ptraceSyscall(this.tid);
  }

  /**
   * Wait for the next stop of the injected syscall under way: its result
   * at the syscall-exit stop, undefined (task resumed again) before.
   */
  syscallStep(): bigint | undefined {
    const f = this.inflight;
    if (f === undefined) throw new CriuTsError('EINFECT', `task ${this.tid}: no injected syscall under way`, { pid: this.tid });
    const st = waitPid(this.tid, __WALL);
    if (st === null) return undefined; // nothing yet (the task is still resumed)
    if (st.exited || st.signaled) {
      this.inflight = undefined;
      throw new CriuTsError('EINFECT', `task ${this.tid} died during injected syscall ${f.nr}`, { pid: this.tid, nr: f.nr });
    }
    if (st.stopSig === SYSCALL_STOP && st.event === 0) {
      if (f.entered) {
        this.inflight = undefined;
        const regs = getGpRegsRaw(this.tid);
        const ip = rd(regs, 'ip');
        if (ip === f.gadget + 2n) return BigInt.asIntN(64, rd(regs, 'ax'));
        throw new CriuTsError('EINFECT', `task ${this.tid}: injected syscall ${f.nr} stopped at 0x${ip.toString(16)}`, { pid: this.tid, nr: f.nr });
      }
      f.entered = true;
    } else if (st.event !== 0 && st.event !== PTRACE_EVENT.STOP) {
      // fork/clone events of an injected clone3: remember, go on.
      this.events.push({ event: st.event, msg: ptraceGetEventMsg(this.tid) });
    } else {
      // A signal that arrived meanwhile (SIGSTOP, SIGTRAP, or any while our
      // mask is not set yet) is kept for later and suppressed now. Syscall
      // stops raise no signal of ours: every one of these is the task's.
      if (st.event === 0 && st.stopSig !== 0) this.stashedSignals.push(ptraceGetSiginfo(this.tid));
      if (++f.tries > 100) {
        this.inflight = undefined;
        throw new CriuTsError('EINFECT', `task ${this.tid}: injected syscall ${f.nr} did not complete (status 0x${st.raw.toString(16)})`, { pid: this.tid, nr: f.nr });
      }
    }
    ptraceSyscall(this.tid);
    return undefined;
  }

  /** Run a syscall; throw RemoteSyscallError on failure. */
  syscall(name: string, nr: number, ...args: Arg[]): bigint {
    const r = this.syscallRaw(nr, ...args);
    if (r < 0n && r > -4096n) throw new RemoteSyscallError(name, Number(-r), this.tid);
    return r;
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
    // MAP_SHARED|MAP_ANONYMOUS: a shmem-backed area never merges with the
    // task's own anonymous mappings, so the dump can leave it out exactly.
    // With `at`, MAP_FIXED_NOREPLACE puts it in a hole the caller chose.
    const flags = 0x21 | (at === undefined ? 0 : 0x100000);
    return { nr: NR.mmap, args: [at ?? 0, size, 3 /* RW */, flags, -1, 0] };
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

  /** Use a scratch area another thread of the same address space mapped. */
  shareScratch(range: { addr: bigint; size: number }): void {
    this.scratch = { ...range };
    this.scratchOwned = false;
  }

  /** Forget the scratch area without unmapping (its mapping was replaced wholesale). */
  dropScratch(): void {
    this.scratch = undefined;
    this.scratchOwned = false;
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
   * Threads sharing a scratch area are cured before its owner, whose cure
   * unmaps it (their self-cure frames live there).
   */
  cure(): void {
    // Take the list first: signals arriving while we re-queue stay queued
    // (everything is blocked), they are not stashed again.
    const stashed = this.stashedSignals.splice(0);
    let failed: unknown;
    try {
      if (stashed.length > 0) {
        this.deferBlock = false;
        const pid = this.tgid();
        const a = this.mapScratch();
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
      // Registers and mask go back whatever happened: an armed thread let go
      // would otherwise run its sigreturn from a scratch area its main
      // thread is about to unmap. (A failed owner keeps its scratch area.)
      failed = e;
    }
    setGpRegsRaw(this.tid, this.origRegs);
    this.cureFrame = undefined;
    if (this.savedSigmask !== undefined) ptraceSetSigmask(this.tid, this.savedSigmask);
    if (failed !== undefined) throw failed;
  }

  /**
   * The owner's frame lives in the scratch area it is about to unmap. Move
   * it first to where the kernel itself would write a signal frame: the
   * top of the thread's sigaltstack if one is set and the thread is not on
   * it, else below the 128-byte red zone of its stack. Memory there is
   * free for the kernel to write at any moment (a signal), so it is for
   * us. If that memory cannot be written (process_vm_writev only: never
   * through read-only pages), the frame stays where it is.
   */
  private moveFrameOutOfScratch(): void {
    const src = this.cureSource;
    const g = this.gadgets;
    if (!this.cureFrame || !src || !g || !this.scratch) return;
    const at = this.scratch.addr;
    this.syscall('sigaltstack', NR.sigaltstack, 0, at);
    const ss = this.readMem(at, 24);
    const ssSp = ss.readBigUInt64LE(0);
    const ssDisabled = (ss.readInt32LE(8) & 2) !== 0; // SS_DISABLE
    const ssSize = ss.readBigUInt64LE(16);
    const sp = rd(this.origRegs, 'sp');
    const onAltStack = sp > ssSp && sp - ssSp <= ssSize;
    const top = !ssDisabled && ssSize > 0n && !onAltStack ? ssSp + ssSize : sp - 128n;
    const used = this.cureFrame.used;
    const slot = (top - BigInt(used)) & ~63n;
    const sc = buildSelfCure(slot, this.origRegs, src.mask, src.xstate, g);
    if (!sc) return;
    let n = 0;
    try {
      n = processVmWritev(this.tid, sc.image, 0, [{ addr: slot, len: sc.used }]);
    } catch {
      n = 0;
    }
    if (n !== sc.used) {
      log.debug(`thread ${this.tid}: no room for the self-cure frame at 0x${slot.toString(16)}; it stays in the scratch area`);
      return;
    }
    setGpRegsRaw(this.tid, sc.idleRegs);
    this.cureFrame = { used: sc.used, injectSp: sc.injectSp, idleRegs: sc.idleRegs };
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
    this.beginSignalDeliveryStop();
    this.endSignalDeliveryStop(timeoutMs);
  }

  /** First half of stopInSignalDelivery: many threads can be sent on their way before the first is waited for. */
  beginSignalDeliveryStop(): void {
    ptraceInterrupt(this.tid);
    ptraceCont(this.tid, 0);
  }

  endSignalDeliveryStop(timeoutMs = 10_000): void {
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
