/**
 * A thread seized inside an rseq critical section (restartable sequences,
 * kernel/rseq.c). When such a thread is preempted or signalled, the kernel
 * checks, on its way back to user space, whether its instruction pointer
 * lies in [start_ip, start_ip + post_commit_offset) of the critical section
 * its struct rseq points to (rseq_cs); if so it clears rseq_cs and moves
 * the thread to abort_ip, so the sequence starts over. Our stop is such an
 * interruption, but the fix-up happens only when the thread resumes: the
 * registers read at the stop still point inside the section.
 *
 * Left that way, the section would run on without its abort: the first of
 * our injected calls returns to a gadget outside the section, where the
 * kernel just clears rseq_cs, and a restored thread's area is cleared the
 * same way. So the fix-up is done at the stop, as the kernel would do it:
 * the thread's registers (and with them the dumped ones and those a cure
 * or a self-cure puts back) point at abort_ip. CRIU does the same at dump.
 *
 * Left alone, as the kernel leaves them: a section whose flags ask for no
 * restart on signal (deprecated; kernels since 6.0 kill the thread for
 * them), and one the kernel would find invalid (bad version, bounds or
 * signature: the kernel kills the thread with SIGSEGV on resume).
 */
import { getGpRegsRaw, processVmReadv, regOffset, setGpRegsRaw, RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL, RSEQ_LAYOUT, type RseqConfig } from '../sys/index.js';
import { logger } from '../log.js';
import { rseqConfig } from './ptrace-state.js';

const log = logger('infect');

/** The thread's rseq state at the stop, before anything of ours ran in it. */
export interface RseqAtStop {
  /** its struct rseq's rseq_cs field (0: no critical section) */
  cs: bigint;
  /** the section's flags with the thread's own (the kernel reads both) */
  flags: number;
  /** its ip was inside the section and now points at the abort handler */
  aborted: boolean;
  /** its registration (PTRACE_GET_RSEQ_CONFIGURATION at the seize: only the thread itself changes it) */
  config: RseqConfig;
}

/** Read `len` bytes of the thread's memory, or undefined if unreadable. */
function peek(tid: number, at: bigint, len: number): Buffer | undefined {
  const b = Buffer.alloc(len);
  try {
    return processVmReadv(tid, b, 0, [{ addr: at, len }]) === len ? b : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Read the thread's rseq area and, when its ip is inside a critical section
 * the kernel would abort, move it to abort_ip (in `regs`, the thread's raw
 * user_regs_struct, and in the thread). Undefined when the thread has no
 * rseq registered or the kernel cannot tell (no PTRACE_GET_RSEQ_CONFIGURATION).
 */
export function abortRseqAtStop(tid: number, regs: Buffer): RseqAtStop | undefined {
  return abortRseqAtStops([{ tid, regs }])[0];
}

/** The thread's registration, or undefined when the kernel cannot tell. */
function configOf(tid: number): RseqConfig | undefined {
  try {
    return rseqConfig(tid);
  } catch {
    return undefined;
  }
}

/**
 * abortRseqAtStop for threads of one address space (the threads of one
 * process): their registrations asked one by one (only ptrace tells them),
 * their areas read in one process_vm_readv through the first thread instead
 * of one each (a 1000-thread dump made 1,000 such reads at its seize); a
 * thread whose area that read cannot reach is read alone, as before.
 */
export function abortRseqAtStops(threads: readonly { tid: number; regs: Buffer }[]): (RseqAtStop | undefined)[] {
  const configs = threads.map((t) => configOf(t.tid));
  const want = configs.flatMap((c, i) => (c !== undefined && c.rseqAbiPointer !== 0n ? [i] : []));
  const areas = new Map<number, Buffer>();
  const all = Buffer.alloc(want.length * RSEQ_LAYOUT.AREA_BYTES);
  const first = threads[want[0] ?? 0];
  let n = -1;
  try {
    if (first !== undefined && want.length > 1) n = processVmReadv(first.tid, all, 0, want.map((i) => ({ addr: (configs[i] as RseqConfig).rseqAbiPointer, len: RSEQ_LAYOUT.AREA_BYTES })));
  } catch {
    n = -1; // each read alone below
  }
  if (n === all.length) want.forEach((i, k) => areas.set(i, all.subarray(k * RSEQ_LAYOUT.AREA_BYTES, (k + 1) * RSEQ_LAYOUT.AREA_BYTES)));
  return threads.map((t, i) => {
    const config = configs[i];
    if (config === undefined || config.rseqAbiPointer === 0n) return undefined;
    const abi = areas.get(i) ?? peek(t.tid, config.rseqAbiPointer, RSEQ_LAYOUT.AREA_BYTES);
    return abi === undefined ? undefined : abortAt(t.tid, t.regs, config, abi);
  });
}

/** abortRseqAtStop once the thread's area is read (`abi`). */
function abortAt(tid: number, regs: Buffer, config: RseqConfig, abi: Buffer): RseqAtStop {
  const signature = config.signature;
  const cs = abi.readBigUInt64LE(RSEQ_LAYOUT.CS_OFFSET);
  const out: RseqAtStop = { cs, flags: abi.readUInt32LE(RSEQ_LAYOUT.FLAGS_OFFSET), aborted: false, config };
  if (cs === 0n) return out;
  const d = peek(tid, cs, RSEQ_LAYOUT.CS_BYTES);
  if (!d) return out;
  out.flags |= d.readUInt32LE(4);
  const version = d.readUInt32LE(0);
  const start = d.readBigUInt64LE(8);
  const length = d.readBigUInt64LE(16);
  const abort = d.readBigUInt64LE(24);
  const ipAt = regOffset('ip');
  const ip = regs.readBigUInt64LE(ipAt);
  if (ip < start || ip - start >= length) return out;
  if ((out.flags & RSEQ_CS_FLAG_NO_RESTART_ON_SIGNAL) !== 0) return out;
  // The kernel's own checks (rseq_get_rseq_cs): what fails them is left for it to punish.
  const inside = abort >= start && abort - start < length;
  const sig = abort >= 4n ? peek(tid, abort - 4n, 4) : undefined;
  if (version !== 0 || start + length < start || inside || sig?.readUInt32LE(0) !== signature) return out;
  regs.writeBigUInt64LE(abort, ipAt);
  // Into the thread as well: resumed without us, it goes where the kernel would send it.
  const live = getGpRegsRaw(tid);
  live.writeBigUInt64LE(abort, ipAt);
  setGpRegsRaw(tid, live);
  out.aborted = true;
  log.debug(`thread ${tid}: stopped in an rseq critical section (ip 0x${ip.toString(16)}): moved to its abort handler 0x${abort.toString(16)}`);
  return out;
}
