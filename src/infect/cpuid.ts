/**
 * CPUID without the cpuid driver: run a `cpuid` instruction inside a
 * process of our own we hold (a `sleep` we started, the restore's stub):
 * never a dump target. Any byte pair 0f a2 in its executable memory
 * decodes as `cpuid` when jumped to (the dynamic loader and libc carry
 * several, for their own CPU feature checks). We write an int3 right after
 * it (PTRACE_POKEDATA: the text page becomes a private copy of that
 * process's), point rip at it with eax/ecx set, let it run to the trap,
 * read eax..edx, and put the bytes and the registers back.
 *
 * Not a single step: under some hypervisors (seen here, Linux 6.18 as a
 * PVM guest) a single-stepped `cpuid`, which the hypervisor emulates,
 * traps only after the NEXT instruction too has run (rip at gadget+4,
 * edx overwritten by the `mov %eax,%edx` after it in glibc).
 */
import {
  getGpRegsRaw, setGpRegsRaw, ptraceCont, ptraceGetSiginfo, ptracePeekData, ptracePokeData, waitPid, __WALL, regOffset, processVmReadv,
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
  const INT3 = 0xccn;
  return (leaf, subleaf) => {
    const saved = getGpRegsRaw(t.tid);
    const word = ptracePeekData(t.tid, gadget);
    // Byte 2 (little-endian: bits 16-23) is the one after cpuid's two.
    ptracePokeData(t.tid, gadget, (word & ~0xff0000n) | (INT3 << 16n));
    const w = Buffer.from(saved);
    wr(w, 'ip', gadget);
    wr(w, 'ax', BigInt(leaf));
    wr(w, 'cx', BigInt(subleaf));
    wr(w, 'orig_ax', -1n);
    setGpRegsRaw(t.tid, w);
    try {
      for (let tries = 0; tries < 100; tries++) {
        ptraceCont(t.tid);
        const st = waitPid(t.tid, __WALL);
        if (st === null) continue;
        if (st.exited || st.signaled) throw new CriuTsError('EINFECT', `task ${t.tid} died while running cpuid`, { pid: t.tid });
        const r = getGpRegsRaw(t.tid);
        const ip = rd(r, 'ip');
        // The int3 trapped: rip is past it.
        if (st.event === 0 && st.stopSig === SIGTRAP && ip === gadget + 3n) {
          const low = (reg: Reg): number => Number(rd(r, reg) & 0xffffffffn);
          return { eax: low('ax'), ebx: low('bx'), ecx: low('cx'), edx: low('dx') };
        }
        // A signal that arrived meanwhile is kept for later, as for injected syscalls; the cpuid has not run yet.
        if (st.event === 0 && st.stopSig !== SIGTRAP && ip === gadget) {
          t.stashedSignals.push(ptraceGetSiginfo(t.tid));
          continue;
        }
        break;
      }
      throw new CriuTsError('EINFECT', `task ${t.tid}: cpuid at 0x${gadget.toString(16)} did not complete`, { pid: t.tid });
    } finally {
      ptracePokeData(t.tid, gadget, word);
      setGpRegsRaw(t.tid, saved);
    }
  };
}

/**
 * This CPU's XSAVE layout without touching any target: from the cpuid
 * driver, or else from a cpuid run in a short-lived process of our own
 * (`sleep`: its loader carries the instruction). A target is never used:
 * its text would be written to, and a pending SIGTRAP of the task could
 * not be told from the trap.
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
