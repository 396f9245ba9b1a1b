/**
 * A thread we hold in a ptrace stop, and the one way criu-ts acts inside
 * it: a syscall injected without writing code into the target. Any byte
 * pair 0f 05 in executable memory decodes as `syscall` when jumped to, so
 * we find one (gadgets.ts), point rip at it with the syscall number and
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
 *
 * Tracee (tracee.ts) adds what a held task owns in the target: the scratch
 * area, the self-cure frame, and the cure that puts everything back.
 */
import { parseStatus } from '../proc/status.js';
import {
  ptraceSyscall, ptraceSingleStep, ptraceCont, ptraceDetach, ptraceDetachQuiet, ptraceInterrupt,
  getGpRegsRaw, setGpRegsRaw, ptraceGetSiginfo, ptraceGetEventMsg, ptraceGetSigmask, ptraceSetSigmask,
  waitPid, __WALL, WNOHANG, PTRACE_EVENT, regOffset, processVmReadv, processVmWritev, ProcMem, SIGTRAP,
} from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { findGadgets, type Gadgets } from './gadgets.js';
import { faultPoint } from '../fault.js';
import { countInjected } from '../timeline.js';
import { RemoteSyscallError } from './remote-error.js';
import { waitForStop } from './stops.js';

const log = logger('infect');

/** stop signal of a syscall-entry/exit stop with PTRACE_O_TRACESYSGOOD */
const SYSCALL_STOP = SIGTRAP | 0x80;

/**
 * The signal mask while we drive a task: every signal. Our stops raise
 * none (syscall, event and interrupt stops are ptrace's own), and no
 * target is single-stepped (infect/cpuid.ts runs cpuid in a process of
 * ours), so a SIGTRAP too stays queued where it was, shared or private,
 * and is dumped as pending like any other. The kernel keeps SIGKILL and
 * SIGSTOP deliverable anyway.
 */
export const HELD_SIGMASK = BigInt.asUintN(64, ~0n);

export type Arg = number | bigint;

export function rd(buf: Buffer, name: Parameters<typeof regOffset>[0]): bigint {
  return buf.readBigUInt64LE(regOffset(name));
}
function wr(buf: Buffer, name: Parameters<typeof regOffset>[0], v: bigint): void {
  buf.writeBigUInt64LE(BigInt.asUintN(64, v), regOffset(name));
}

const SIGTRAP_BIT = 1n << BigInt(SIGTRAP - 1);

/** Whether the task's SIGTRAP is neither caught, ignored nor pending (/proc/TID/status). */
function sigtrapAtDefault(tid: number): boolean {
  try {
    const st = parseStatus(tid);
    return [st.sigCgt, st.sigIgn, st.sigPnd, st.shdPnd].every((m) => (m & SIGTRAP_BIT) === 0n);
  } catch {
    return false;
  }
}

export class HeldTask {
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
  protected gadgets: Gadgets | undefined;
  private readonly work: Buffer;
  private detached = false;
  protected savedSigmask: bigint | undefined;
  /** signals are blocked only by selfCure(), not by the first injected call */
  protected deferBlock = false;
  /** the injected syscall under way between syscallBegin() and its last syscallStep() */
  private inflight: { nr: number; gadget: bigint; entered: boolean; tries: number; step: boolean } | undefined;
  /** injected calls single-step their `syscall` instruction (stepCalls()) */
  private stepping = false;

  protected constructor(readonly tid: number, origRegs: Buffer, stopSignal: number) {
    this.origRegs = Buffer.from(origRegs);
    this.work = Buffer.from(origRegs);
    this.wasStopped = stopSignal !== 0;
    this.stopSignal = stopSignal;
  }

  /** Called before every injected syscall: Tracee refuses one into a dump target not armed yet. */
  protected beforeInject(_nr: number): void {
    // nothing to check for a task that is not a dump target
  }

  /** The stack pointer injected calls run on when a self-cure frame is armed (Tracee); none here. */
  protected armedInjectSp(): bigint | undefined {
    return undefined;
  }

  /**
   * Block every signal while we drive the task (HELD_SIGMASK): a signal
   * arriving meanwhile stays queued, is seen as pending by a dump, and is
   * delivered after cure, instead of interrupting our injected calls.
   * `origSigmask` is the task's own mask.
   */
  protected blockSignals(ownMaskReadAtThisStop?: bigint): void {
    this.savedSigmask = ownMaskReadAtThisStop ?? ptraceGetSigmask(this.tid);
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
  shareGadgets(from: HeldTask): void {
    this.gadgets = from.findGadgets(true);
  }

  protected findGadgets(full = false): Gadgets {
    if (this.gadgets !== undefined && (!full || this.gadgets.syscallRet !== undefined)) return this.gadgets;
    const g = findGadgets(this.tid, full);
    if (!g) throw new CriuTsError('EINFECT', `task ${this.tid}: no executable syscall instruction found`, { pid: this.tid });
    log.debug(`task ${this.tid}: syscall gadget at 0x${g.syscall.toString(16)}`);
    this.gadgets = g;
    return g;
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
    this.beforeInject(nr);
    countInjected();
    if (this.savedSigmask === undefined && !this.deferBlock) this.blockSignals();
    const armedSp = this.armedInjectSp();
    const g = this.findGadgets();
    // Armed: run the `syscall; ret` whose ret lands in the self-cure frame.
    const gadget = armedSp !== undefined ? (g.syscallRet as bigint) : g.syscall;
    const w = this.work;
    this.origRegs.copy(w);
    wr(w, 'ip', gadget);
    wr(w, 'ax', BigInt(nr));
    wr(w, 'orig_ax', -1n);
    if (armedSp !== undefined) wr(w, 'sp', armedSp);
    const names = ['di', 'si', 'dx', 'r10', 'r8', 'r9'] as const;
    names.forEach((n, i) => wr(w, n, BigInt(args[i] ?? 0)));
    setGpRegsRaw(this.tid, w);
    faultPoint('inject');
    this.inflight = { nr, gadget, entered: false, tries: 0, step: this.stepping };
    this.resume();
  }

  /** Resume toward the next stop of the call under way. */
  private resume(): void {
    if (this.inflight?.step === true) ptraceSingleStep(this.tid);
    else ptraceSyscall(this.tid);
  }

  /**
   * Run the next injected calls by single-stepping the `syscall`
   * instruction: the kernel reports the step when the call returns, so a
   * call costs one stop instead of PTRACE_SYSCALL's two (entry and exit),
   * and one wait for the task to be scheduled instead of two.
   *
   * Only for a task of our own, never a dump target: a trap flag outlives
   * a killed tracer (see the file header), so the task must die with us,
   * as a restore's tasks do (PTRACE_O_EXITKILL, `exitKill`). And the step is
   * reported as a forced SIGTRAP, which the kernel lets through a blocked
   * mask and, when SIGTRAP is blocked or ignored, answers by resetting its
   * disposition to SIG_DFL: so stepping is taken only while the task's
   * SIGTRAP is at its default (no handler, not ignored), where that reset
   * changes nothing; the SIGTRAP itself stops in signal delivery and is
   * discarded there; nor is it taken with a SIGTRAP pending. Use it before
   * any signal is queued for the task (a restore's memory phase), only for
   * calls that cannot block. `atDefault`: the caller knows SIGTRAP is so (no
   * /proc read). Returns whether stepping is on; stepCalls(false) puts
   * SIGTRAP back into the held mask.
   */
  stepCalls(on: boolean, exitKill = false, atDefault?: boolean): boolean {
    if (!on) {
      const was = this.stepping;
      this.stepping = false;
      try {
        if (was && this.savedSigmask !== undefined) ptraceSetSigmask(this.tid, HELD_SIGMASK);
      } catch {
        // the task is gone: whatever failed says why
      }
      return false;
    }
    return (this.stepping = exitKill && (atDefault ?? sigtrapAtDefault(this.tid)));
  }

  /**
   * Wait for the next stop of the injected syscall under way: its result
   * at the syscall-exit stop, undefined (task resumed again) before.
   */
  syscallStep(nohang = false): bigint | undefined {
    const f = this.inflight;
    if (f === undefined) throw new CriuTsError('EINFECT', `task ${this.tid}: no injected syscall under way`, { pid: this.tid });
    const st = waitPid(this.tid, nohang ? __WALL | WNOHANG : __WALL);
    if (st === null) return undefined; // nothing yet (the task is still resumed)
    if (st.exited || st.signaled) {
      this.inflight = undefined;
      throw new CriuTsError('EINFECT', `task ${this.tid} died during injected syscall ${f.nr}`, { pid: this.tid, nr: f.nr });
    }
    if (f.step && st.stopSig === SIGTRAP && st.event === 0) {
      // The step's trap, or a SIGTRAP sent before the call ran (still at the gadget): kept like any signal.
      const regs = getGpRegsRaw(this.tid);
      const ip = rd(regs, 'ip');
      if (ip === f.gadget + 2n) {
        this.inflight = undefined;
        return BigInt.asIntN(64, rd(regs, 'ax'));
      }
      if (ip !== f.gadget || ++f.tries > 100) {
        this.inflight = undefined;
        throw new CriuTsError('EINFECT', `task ${this.tid}: stepped syscall ${f.nr} stopped at 0x${ip.toString(16)}`, { pid: this.tid, nr: f.nr });
      }
      this.stashedSignals.push(ptraceGetSiginfo(this.tid));
    } else if (st.stopSig === SYSCALL_STOP && st.event === 0) {
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
    this.resume();
    return undefined;
  }

  /** Run a syscall; throw RemoteSyscallError on failure. */
  syscall(name: string, nr: number, ...args: Arg[]): bigint {
    const r = this.syscallRaw(nr, ...args);
    if (r < 0n && r > -4096n) throw new RemoteSyscallError(name, Number(-r), this.tid);
    return r;
  }

  /**
   * syscall(), with `beside()` run in our process while the task is in the
   * call (a restore checks the bytes an injected preadv is reading into the
   * task); it may ask `done()` (no wait) whether the call is over, to leave
   * the rest for later rather than keep the task in its stop. The call is
   * always collected first; then beside's error is thrown. */
  syscallBeside(name: string, nr: number, args: readonly Arg[], beside: (done: () => boolean) => void): bigint {
    this.syscallBegin(nr, args);
    let failed: { e: unknown } | undefined;
    let r: bigint | undefined;
    try {
      beside(() => (r ??= this.syscallStep(true)) !== undefined);
    } catch (e) {
      failed = { e };
    }
    // A done() that threw (the task died in the call) left nothing in flight: its error is thrown.
    while (r === undefined && this.inflight !== undefined) r = this.syscallStep();
    if (failed !== undefined || r === undefined) throw failed?.e;
    if (r < 0n && r > -4096n) throw new RemoteSyscallError(name, Number(-r), this.tid);
    return r;
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

  tgid(): number {
    return parseStatus(this.tid).tgid;
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
