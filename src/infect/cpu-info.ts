/**
 * This CPU as CRIU describes it in cpuinfo.img (`criu cpuinfo dump`,
 * `--cpu-cap`): vendor, family, model, stepping, the model string, the
 * XSAVE features and sizes, and 19 words of feature bits.
 *
 * The words are CRIU's own layout, an ABI of its images (capability_ver 2):
 * mostly the kernel's cpufeature words, but word 11 holds CPUID 7.0 ECX and
 * word 16 CPUID 0xF.0 EDX (the kernel has them the other way round), and
 * word 3 carries three "Linux-defined" bits CRIU sets itself (CPUID, NOPL,
 * REP_GOOD). The XSAVE feature mask is filtered as CRIU 4.2 filters it: user
 * features whose CPUID bit is set, with the bits of its supervisor mask
 * cleared (that mask, as written, also clears SSE and BNDREGS), so that an
 * image either tool writes on one machine checks against the other's.
 *
 * CPUID comes from the cpuid driver, or from a `cpuid` run (to an int3 after it) in a
 * short-lived process of our own (infect/cpuid.ts): never from a target.
 */
import { cpuidFromDevice, type CpuidFn } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { cpuidThroughTracee } from './cpuid.js';
import { startOwnSleep, withSeized } from './helper-task.js';

/** Number of 32-bit feature words in a capability_ver 2 image; version 1 had 12. */
export const CAP_WORDS_V2 = 19;
export const CAP_WORDS_V1 = 12;

/** Word indexes: which CPUID register each holds. */
const W = {
  L1_EDX: 0, L80000001_EDX: 1, LNX_1: 3, L1_ECX: 4, L80000001_ECX: 6, L7_0_EBX: 9, L0D_1_EAX: 10,
  L7_0_ECX: 11, L0F_1_EDX: 12, L80000008_EBX: 13, L6_EAX: 14, L8000000A_EDX: 15, L0F_0_EDX: 16,
  L80000007_EBX: 17, L7_0_EDX: 18,
} as const;

/** A feature bit: word * 32 + bit. */
const bit = (word: number, b: number): number => word * 32 + b;
export const FEATURE = {
  FPU: bit(0, 0), FXSR: bit(0, 24), XMM: bit(0, 25),
  REP_GOOD: bit(3, 16), NOPL: bit(3, 20), CPUID: bit(3, 25),
  XSAVE: bit(4, 26), OSXSAVE: bit(4, 27), AVX: bit(4, 28),
  MPX: bit(9, 14), AVX512F: bit(9, 16), ERMS: bit(9, 9), INTEL_PT: bit(9, 25),
  XSAVES: bit(10, 3), PKU: bit(11, 3), HDC: bit(14, 13), CQM_LLC: bit(16, 1),
} as const;

/** XSAVE components, as CRIU filters them (see the header comment). */
const XFEATURE_USER = 0x1 | 0x2 | 0x4 | 0x20 | 0x40 | 0x80 | 0x200 | 0x8 | 0x10;
const XFEATURE_SUPERVISOR_AS_CRIU = 0x100 | 10;
/** The CPUID feature each XSAVE component 0..10 depends on. */
const XSAVE_COMPONENT_FEATURE = [
  FEATURE.FPU, FEATURE.XMM, FEATURE.AVX, FEATURE.MPX, FEATURE.MPX, FEATURE.AVX512F, FEATURE.AVX512F, FEATURE.AVX512F,
  FEATURE.INTEL_PT, FEATURE.PKU, FEATURE.HDC,
];

export type CpuVendor = 'INTEL' | 'AMD';

/** cpuinfo_x86_entry's contents. */
export interface CpuInfo {
  vendor: CpuVendor;
  family: number;
  model: number;
  stepping: number;
  /** CAP_WORDS_V2 words */
  capability: number[];
  modelId: string;
  xfeaturesMask: bigint;
  xsaveSize: number;
  xsaveSizeMax: number;
}

export function hasFeature(caps: readonly number[], feature: number): boolean {
  return (((caps[feature >> 5] ?? 0) >>> (feature & 31)) & 1) === 1;
}

function setFeature(caps: number[], feature: number, on: boolean): void {
  const w = feature >> 5;
  const m = 1 << (feature & 31);
  caps[w] = ((on ? (caps[w] ?? 0) | m : (caps[w] ?? 0) & ~m) >>> 0);
}

/** Four registers' bytes as text (vendor and brand strings). */
function text(...regs: number[]): string {
  const b = Buffer.alloc(regs.length * 4);
  regs.forEach((r, i) => b.writeUInt32LE(r >>> 0, i * 4));
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('latin1');
}

/** CpuInfo from a CPUID source. */
export function cpuInfoFrom(cpuid: CpuidFn): CpuInfo {
  const caps = new Array<number>(CAP_WORDS_V2).fill(0);
  const v = cpuid(0, 0);
  const level = v.eax >>> 0;
  const vendorId = text(v.ebx, v.edx, v.ecx);
  let vendor: CpuVendor;
  if (vendorId === 'GenuineIntel') vendor = 'INTEL';
  else if (vendorId === 'AuthenticAMD' || vendorId === 'HygonGenuine') vendor = 'AMD';
  else throw new CriuTsError('EUNSUPPORTED', `CPU vendor "${vendorId}" is not one CRIU's cpuinfo image can name (Intel or AMD)`, { vendor: vendorId });
  let family = 4;
  let model = 0;
  let stepping = 0;
  let sig = 0;
  if (level >= 1) {
    const r = cpuid(1, 0);
    sig = r.eax >>> 0;
    family = (sig >>> 8) & 0xf;
    model = (sig >>> 4) & 0xf;
    stepping = sig & 0xf;
    if (family === 0xf) family += (sig >>> 20) & 0xff;
    if (family >= 6) model += ((sig >>> 16) & 0xf) << 4;
    caps[W.L1_EDX] = r.edx >>> 0;
    caps[W.L1_ECX] = r.ecx >>> 0;
  }
  if (level >= 6) caps[W.L6_EAX] = cpuid(6, 0).eax >>> 0;
  if (level >= 7) {
    const r = cpuid(7, 0);
    caps[W.L7_0_EBX] = r.ebx >>> 0;
    caps[W.L7_0_ECX] = r.ecx >>> 0;
    caps[W.L7_0_EDX] = r.edx >>> 0;
  }
  if (level >= 0xd) caps[W.L0D_1_EAX] = cpuid(0xd, 1).eax >>> 0;
  if (level >= 0xf) {
    caps[W.L0F_0_EDX] = cpuid(0xf, 0).edx >>> 0;
    if (hasFeature(caps, FEATURE.CQM_LLC)) caps[W.L0F_1_EDX] = cpuid(0xf, 1).edx >>> 0;
  }
  const ext = cpuid(0x80000000, 0).eax >>> 0;
  const hasExt = ((ext & 0xffff0000) >>> 0) === 0x80000000;
  if (hasExt && ext >= 0x80000001) {
    const r = cpuid(0x80000001, 0);
    caps[W.L80000001_ECX] = r.ecx >>> 0;
    caps[W.L80000001_EDX] = r.edx >>> 0;
  }
  let modelId = '';
  if (ext >= 0x80000004) {
    const parts = [0x80000002, 0x80000003, 0x80000004].map((l) => cpuid(l, 0));
    // Intel right-justifies the brand string.
    modelId = text(...parts.flatMap((r) => [r.eax, r.ebx, r.ecx, r.edx])).replace(/^ +/, '');
  }
  if (ext >= 0x80000007) caps[W.L80000007_EBX] = cpuid(0x80000007, 0).ebx >>> 0;
  if (ext >= 0x8000000a) caps[W.L8000000A_EDX] = cpuid(0x8000000a, 0).edx >>> 0;
  if (ext >= 0x80000008) caps[W.L80000008_EBX] = cpuid(0x80000008, 0).ebx >>> 0;
  // What an x86-64 CPU always has, and what the kernel's early vendor set-up decides.
  setFeature(caps, FEATURE.CPUID, true);
  setFeature(caps, FEATURE.NOPL, true);
  if (level < 0xd) setFeature(caps, FEATURE.XSAVE, false);
  if (vendor === 'INTEL') {
    if (family === 15) {
      setFeature(caps, FEATURE.REP_GOOD, false);
      setFeature(caps, FEATURE.ERMS, false);
    } else if (family === 6) setFeature(caps, FEATURE.REP_GOOD, true);
  } else {
    setFeature(caps, bit(0, 31), false);
    if (family >= 0x10) setFeature(caps, FEATURE.REP_GOOD, true);
    if (family === 0xf && ((sig >= 0x0f48 && sig < 0x0f50) || sig >= 0x0f58)) setFeature(caps, FEATURE.REP_GOOD, true);
  }
  let xfeaturesMask = 0n;
  let xsaveSize = 0;
  let xsaveSizeMax = 0;
  if (hasFeature(caps, FEATURE.XSAVE)) {
    const r = cpuid(0xd, 0);
    let mask = BigInt(r.eax >>> 0) | (BigInt(r.edx >>> 0) << 32n);
    XSAVE_COMPONENT_FEATURE.forEach((f, i) => {
      if (!hasFeature(caps, f)) mask &= ~(1n << BigInt(i));
    });
    xfeaturesMask = mask & BigInt(XFEATURE_USER) & ~BigInt(XFEATURE_SUPERVISOR_AS_CRIU);
    xsaveSize = r.ebx >>> 0;
    xsaveSizeMax = r.ecx >>> 0;
  }
  return { vendor, family, model, stepping, capability: caps, modelId, xfeaturesMask, xsaveSize, xsaveSizeMax };
}

let cached: CpuInfo | undefined;

/** This CPU: through the cpuid driver, else a `cpuid` in a process of our own. */
export function runtimeCpuInfo(): CpuInfo {
  if (cached) return cached;
  const dev = cpuidFromDevice();
  if (dev) {
    cached = cpuInfoFrom(dev);
    return cached;
  }
  const own = startOwnSleep('cpuid helper', 'EINTERNAL', 1000);
  cached = withSeized(own, (t) => {
    const fn = cpuidThroughTracee(t);
    if (!fn) throw new CriuTsError('EINTERNAL', 'no cpuid instruction found in a process of our own to ask the CPU with', {});
    return cpuInfoFrom(fn);
  });
  return cached;
}
