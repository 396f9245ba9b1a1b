/**
 * The XSAVE layout of this CPU, from CPUID leaf 0xD.
 *
 * PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE use the standard (non-compacted)
 * XSAVE format. Its legacy area (0..511) and header (512..575) are fixed;
 * every other state component sits at the offset CPUID.(EAX=0xD,ECX=i).EBX
 * gives, with the size in EAX, and those differ between CPUs (AMD parts
 * without MPX put the AVX-512 opmask at 832, Intel parts at 1088). Which
 * components the OS enabled (XCR0) is in every ptrace XSAVE buffer: the
 * kernel stores it in the first 8 bytes of the software-reserved area
 * (USER_XSTATE_XCR0_WORD, at byte 464), for debuggers.
 *
 * CPUID is read from /dev/cpu/N/cpuid (the cpuid driver: an 16-byte pread at
 * offset (subleaf << 32) | leaf). Where that driver is missing, the caller
 * may supply another source (a `cpuid` instruction executed in a traced task).
 */
import { openSync, readSync } from 'node:fs';
import { addr, sysTry } from './libc.js';
import { NR } from './nr.js';

/** Registers CPUID returns for one leaf/sub-leaf. */
export interface CpuidRegs {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}
export type CpuidFn = (leaf: number, subleaf: number) => CpuidRegs;

/** One state component of the standard format. */
export interface XstateComponent {
  /** Bit number in XCR0 / xstate_bv. */
  bit: number;
  offset: number;
  size: number;
}

export interface XstateLayout {
  /** User state components CPUID describes, by bit (bits 2 and up). */
  components: ReadonlyMap<number, XstateComponent>;
  /** Size of the standard-format area for every feature the CPU supports (CPUID 0xD.0 ECX). */
  maxSize: number;
  /** Where the layout came from, for logs. */
  source: string;
}

/** Byte offset of the XCR0 copy the kernel puts in ptrace XSAVE buffers. */
export const XSTATE_XCR0_OFFSET = 464;
/** Legacy area + header: the part whose layout is architectural. */
export const XSAVE_LEGACY_AND_HEADER_BYTES = 576;
/** room enough for any XSAVE area a PTRACE_GETREGSET NT_X86_XSTATE returns (AMX tiles included) */
export const XSAVE_MAX_BYTES = 16384;
/** Highest component number CPUID leaf 0xD can describe. */
const MAX_COMPONENT = 62;

/**
 * The CPU this thread runs on (getcpu(2)); 0 if the kernel will not say.
 * The cpuid driver runs the instruction on the CPU its file names: from
 * another CPU that is a cross-CPU call per read, which waits for that CPU
 * (the 4-20 reads of a dump's XSAVE layout and cpuinfo took 8-46 ms on
 * the busy 2-core benchmark VM, 0.3-0.9 ms from the CPU we are on).
 */
export function currentCpu(): number {
  const b = Buffer.alloc(4);
  return sysTry(NR.getcpu, addr(b), 0, 0) === 0 ? b.readUInt32LE(0) : 0;
}

/**
 * CPUID through the cpuid driver (of `cpu`, by default the one we run on:
 * the feature, size and layout fields criu-ts reads answer alike on every
 * CPU one kernel runs; only topology fields such as the APIC id differ);
 * undefined when the driver's file cannot be read.
 */
export function cpuidFromDevice(cpu = currentCpu()): CpuidFn | undefined {
  let fd: number;
  try {
    fd = openSync(`/dev/cpu/${cpu}/cpuid`, 'r');
  } catch {
    return undefined;
  }
  return (leaf, subleaf) => {
    const b = Buffer.alloc(16);
    // The position is (subleaf << 32) | leaf: a number above 2^53 is not needed (subleaf < 64).
    const pos = subleaf * 2 ** 32 + leaf;
    const n = readSync(fd, b, 0, 16, pos);
    if (n !== 16) throw new Error(`/dev/cpu/${cpu}/cpuid: short read at leaf ${leaf.toString(16)}.${subleaf}`);
    return { eax: b.readUInt32LE(0), ebx: b.readUInt32LE(4), ecx: b.readUInt32LE(8), edx: b.readUInt32LE(12) };
  };
  // The fd stays open for the life of the process: the layout is read once and cached.
}

/** Read leaf 0xD with `cpuid`: every user (not supervisor) component the CPU describes. */
export function xstateLayoutFrom(cpuid: CpuidFn, source: string): XstateLayout {
  const components = new Map<number, XstateComponent>();
  const main = cpuid(0xd, 0);
  // EAX/EDX of sub-leaf 0: components XCR0 may enable; sub-leaf 1 ECX/EDX: IA32_XSS (supervisor) ones.
  const supported = BigInt(main.eax) | (BigInt(main.edx) << 32n);
  for (let bit = 2; bit <= MAX_COMPONENT; bit++) {
    if ((supported & (1n << BigInt(bit))) === 0n) continue;
    const r = cpuid(0xd, bit);
    // ECX bit 0: supervisor state (not in the standard user format, no offset).
    if (r.eax === 0 || (r.ecx & 1) !== 0) continue;
    components.set(bit, { bit, offset: r.ebx, size: r.eax });
  }
  return { components, maxSize: main.ecx, source };
}

let cached: XstateLayout | undefined;

/**
 * This CPU's XSAVE layout. `fallback` is asked only when the cpuid driver is
 * missing; without either, undefined (callers refuse what needs it).
 */
export function xstateLayout(fallback?: () => CpuidFn | undefined): XstateLayout | undefined {
  if (cached) return cached;
  const dev = cpuidFromDevice();
  if (dev) {
    cached = xstateLayoutFrom(dev, '/dev/cpu/0/cpuid');
    return cached;
  }
  const fn = fallback?.();
  if (fn) cached = xstateLayoutFrom(fn, 'cpuid in a traced task');
  return cached;
}

/** Enabled user features (XCR0) as the kernel reports them in a ptrace XSAVE buffer. */
export function xcr0Of(xsave: Buffer): bigint {
  if (xsave.length < XSAVE_LEGACY_AND_HEADER_BYTES) return 3n; // FXSAVE only: x87 and SSE
  return xsave.readBigUInt64LE(XSTATE_XCR0_OFFSET);
}
