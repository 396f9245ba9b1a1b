/**
 * CPUID without the cpuid driver: run a `cpuid` instruction inside a task
 * we hold. As with syscalls (tracee.ts), nothing is written into the task:
 * any byte pair 0f a2 in its executable memory decodes as `cpuid` when
 * jumped to (the dynamic loader and libc carry several, for their own CPU
 * feature checks). We point rip at one with eax/ecx set, single-step once,
 * read eax..edx and put the task's registers back. `cpuid` touches no
 * memory and has no side effect, so the task cannot tell.
 */
import {
  getGpRegsRaw, setGpRegsRaw, ptraceSingleStep, ptraceGetSiginfo, waitPid, __WALL, regOffset, processVmReadv,
  xstateLayout, type CpuidFn, type XstateLayout, SIGTRAP,
} from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { Tracee } from './tracee.js';
import { startOwnSleep, withSeized, type OwnSleep } from './helper-task.js';
import { logger } from '../log.js';
import { execMappings } from './gadgets.js';

const log = logger('infect');
const CPUID_INSN = Buffer.from([0x0f, 0xa2]);
/** How much of each executable mapping we search. */
const SEARCH_BYTES = 4 << 20;

type Reg = Parameters<typeof regOffset>[0];
const rd = (b: Buffer, r: Reg): bigint => b.readBigUInt64LE(regOffset(r));
const wr = (b: Buffer, r: Reg, v: bigint): void => {
  b.writeBigUInt64LE(BigInt.asUintN(64, v), regOffset(r));
};

/** Address of a 0f a2 byte pair in the task's executable memory, or undefined. */
function findCpuidGadget(tid: number): bigint | undefined {
  for (const { start: s, end: e } of execMappings(tid)) {
    const len = Number(e - s > BigInt(SEARCH_BYTES) ? BigInt(SEARCH_BYTES) : e - s);
    const buf = Buffer.alloc(len);
    let n = 0;
    try {
      n = processVmReadv(tid, buf, 0, [{ addr: s, len }]);
    } catch {
      continue;
    }
    const i = buf.subarray(0, n).indexOf(CPUID_INSN);
    if (i >= 0) return s + BigInt(i);
  }
  return undefined;
}

/**
 * A CPUID function that runs the instruction in `t` (held in a ptrace stop),
 * or undefined when its executable memory holds no 0f a2 pair.
 */
export function cpuidThroughTracee(t: Tracee): CpuidFn | undefined {
  const gadget = findCpuidGadget(t.tid);
  if (gadget === undefined) return undefined;
  log.debug(`task ${t.tid}: cpuid gadget at 0x${gadget.toString(16)}`);
  return (leaf, subleaf) => {
    const saved = getGpRegsRaw(t.tid);
    const w = Buffer.from(saved);
    wr(w, 'ip', gadget);
    wr(w, 'ax', BigInt(leaf));
    wr(w, 'cx', BigInt(subleaf));
    wr(w, 'orig_ax', -1n);
    setGpRegsRaw(t.tid, w);
    try {
      for (let tries = 0; tries < 100; tries++) {
        ptraceSingleStep(t.tid);
        const st = waitPid(t.tid, __WALL);
        if (st === null) continue;
        if (st.exited || st.signaled) throw new CriuTsError('EINFECT', `task ${t.tid} died while running cpuid`, { pid: t.tid });
        // A signal that arrived meanwhile is kept for later, as for injected syscalls.
        if (st.event === 0 && st.stopSig !== SIGTRAP) t.stashedSignals.push(ptraceGetSiginfo(t.tid));
        const r = getGpRegsRaw(t.tid);
        const ip = rd(r, 'ip');
        if (ip === gadget + 2n) {
          const low = (reg: Reg): number => Number(rd(r, reg) & 0xffffffffn);
          return { eax: low('ax'), ebx: low('bx'), ecx: low('cx'), edx: low('dx') };
        }
        if (ip !== gadget) break;
      }
      throw new CriuTsError('EINFECT', `task ${t.tid}: cpuid at 0x${gadget.toString(16)} did not complete`, { pid: t.tid });
    } finally {
      setGpRegsRaw(t.tid, saved);
    }
  };
}

/**
 * This CPU's XSAVE layout without touching any target: from the cpuid
 * driver, or else from a cpuid single-stepped in a short-lived process of
 * our own (`sleep`: its loader carries the instruction). A target is never
 * single-stepped: a trap flag would outlive a killed criu-ts, and a
 * pending SIGTRAP of the task could not be told from the trap.
 */
export function xstateLayoutOfOwnTask(): XstateLayout | undefined {
  const known = xstateLayout();
  if (known) return known;
  let own: OwnSleep;
  try {
    own = startOwnSleep('cpuid helper', 'EINTERNAL', 1000);
  } catch (e) {
    // No task of our own to ask: the caller goes on without the layout.
    log.debug((e as Error).message);
    return undefined;
  }
  return withSeized(own, (t) => xstateLayout(() => cpuidThroughTracee(t)));
}
