/**
 * The state of a stopped task that ptrace reads and writes directly (no
 * injected syscall): the XSAVE area, queued signals, rseq, seccomp filters,
 * the held signal mask, trace options and the final detach. The dump and
 * restore cores call these, never src/sys/ptrace.ts itself: src/infect is
 * the one place that drives ptrace, as CRIU's compel is.
 */
import {
  ptraceDetach, ptraceDetachQuiet, ptraceGetRegset, ptraceGetRegsetView, ptraceGetRseqConfig, ptracePeekSiginfo, ptraceSeccompFilterFlags,
  ptraceSeccompGetFilter, ptraceSetOptions, ptraceSetRegset, ptraceSetSigmask, ptraceGetSigmask, setGpRegsRaw, NT_X86_XSTATE, type RseqConfig,
} from '../sys/index.js';

/** The thread's XSAVE area (NT_X86_XSTATE), at most `maxBytes`. */
export function readXstate(tid: number, maxBytes: number): Buffer {
  return ptraceGetRegset(tid, NT_X86_XSTATE, maxBytes);
}

/** readXstate without a copy: the bytes are valid until the next register read (use them at once). */
export function readXstateView(tid: number, maxBytes: number): Buffer {
  return ptraceGetRegsetView(tid, NT_X86_XSTATE, maxBytes);
}

/** Set the thread's general registers (NT_PRSTATUS, encoded user_regs_struct). */
export function writeGpRegs(tid: number, regs: Buffer): void {
  setGpRegsRaw(tid, regs);
}

/** Load an XSAVE area into the thread. */
export function writeXstate(tid: number, xsave: Buffer): void {
  ptraceSetRegset(tid, NT_X86_XSTATE, xsave);
}

/** Signals queued for the thread (`shared`: the process-wide queue), as siginfo buffers, without taking them. */
export function peekSignals(tid: number, shared: boolean): Buffer[] {
  return ptracePeekSiginfo(tid, shared);
}

/** The thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION). */
export function rseqConfig(tid: number): RseqConfig {
  return ptraceGetRseqConfig(tid);
}

/** Seccomp filter `index` of the thread's chain (classic BPF), or null past the end. */
export function seccompFilter(tid: number, index: number): Buffer | null {
  return ptraceSeccompGetFilter(tid, index);
}

/** The flags filter `index` was installed with. */
export function seccompFilterFlags(tid: number, index: number): number {
  return ptraceSeccompFilterFlags(tid, index);
}

/** Replace the thread's PTRACE_O_* options. */
export function setTraceOptions(tid: number, options: number): void {
  ptraceSetOptions(tid, options);
}

/** Set the signal mask a traced thread has while it is held (PTRACE_SETSIGMASK). */
export function holdSigmask(tid: number, mask: bigint): void {
  ptraceSetSigmask(tid, mask);
}

/** The signal mask a traced thread has now (PTRACE_GETSIGMASK): what it resumes with. */
export function sigmaskNow(tid: number): bigint {
  return ptraceGetSigmask(tid);
}

/** Let the thread go, delivering `sig` (0: none). */
export function release(tid: number, sig = 0): void {
  ptraceDetach(tid, sig);
}

/** release() for a thread that may be gone already: says whether it was still ours. */
export function releaseQuiet(tid: number, sig = 0): boolean {
  return ptraceDetachQuiet(tid, sig);
}
