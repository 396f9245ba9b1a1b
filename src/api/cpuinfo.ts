/**
 * `criu cpuinfo dump|check` and `--cpu-cap`: this CPU saved in cpuinfo.img,
 * and an image's CPU checked against the one we run on before a restore
 * (CRIU's rules: with `fpu`, the FPU features, XSAVE features and sizes the
 * restored registers need; with `ins`, the instruction sets the program may
 * have chosen at start-up; with `cpu`, every feature word equal).
 *
 * @example
 *   cpuinfoDump({ imagesDir: '/tmp/ckpt' });
 *   cpuinfoCheck({ imagesDir: '/tmp/ckpt', cpuCap: CPU_CAP.FPU | CPU_CAP.INS });
 */
export { CPU_CAP, parseCpuCap } from './cpu-cap.js';
import { resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import { loadImage, storeImage } from '../images/index.js';
import type { CpuinfoX86Entry } from '../images/messages.js';
import { CPU_CAP } from './cpu-cap.js';
import { CAP_WORDS_V1, CAP_WORDS_V2, FEATURE, hasFeature, runtimeCpuInfo, type CpuInfo } from '../infect/cpu-info.js';

function entryOf(c: CpuInfo): CpuinfoX86Entry {
  return {
    vendor_id: c.vendor, cpu_family: c.family, model: c.model, stepping: c.stepping, capability_ver: 2,
    capability: c.capability, ...(c.modelId !== '' ? { model_id: c.modelId } : {}),
    xfeatures_mask: c.xfeaturesMask, xsave_size: c.xsaveSize, xsave_size_max: c.xsaveSizeMax,
  };
}

/** Write this CPU's cpuinfo.img into `imagesDir` (as `criu cpuinfo dump`, and a dump with --cpu-cap). */
export function cpuinfoDump(opts: { imagesDir?: string }): void {
  storeImage(resolve(opts.imagesDir ?? '.'), 'CPUINFO', undefined, [{ x86_entry: [entryOf(runtimeCpuInfo())] }]);
}

/** The image's CPU, its missing parts taken from ours (as CRIU reads older images). */
function imageCpu(file: string, e: CpuinfoX86Entry, rt: CpuInfo): CpuInfo {
  if (e.vendor_id !== 'INTEL' && e.vendor_id !== 'AMD') {
    throw new CriuTsError('EIMAGE', `${file}: unknown CPU vendor ${String(e.vendor_id)}`, { file, field: 'vendor_id' });
  }
  const words = e.capability_ver === 1 ? CAP_WORDS_V1 : e.capability_ver === 2 ? CAP_WORDS_V2 : undefined;
  if (words === undefined) throw new CriuTsError('EIMAGE', `${file}: unknown capability version ${e.capability_ver}`, { file, field: 'capability_ver' });
  const caps = e.capability ?? [];
  if (caps.length !== words) {
    throw new CriuTsError('EIMAGE', `${file}: ${caps.length} capability words, version ${e.capability_ver} has ${words}`, { file, field: 'capability' });
  }
  return {
    vendor: e.vendor_id, family: e.cpu_family, model: e.model, stepping: e.stepping,
    capability: [...caps, ...rt.capability.slice(words)],
    modelId: e.model_id ?? '',
    xfeaturesMask: e.xfeatures_mask ?? rt.xfeaturesMask,
    xsaveSize: e.xsave_size ?? rt.xsaveSize,
    xsaveSizeMax: e.xsave_size_max ?? rt.xsaveSizeMax,
  };
}

/** Per word: the bits of instructions a program may have chosen to use at start-up (CRIU's list). */
const INS_MASK: readonly number[] = (() => {
  const bits: readonly [number, readonly number[]][] = [
    [0, [0, 4, 8, 11, 15, 19, 23, 24, 25, 26]],
    [1, [11, 22, 27, 30, 31]],
    [3, [16, 20]],
    [4, [0, 1, 3, 9, 13, 19, 20, 22, 23, 25, 26, 27, 28, 29, 30]],
    [6, [5, 6, 7, 8, 11, 16, 21]],
    [9, [0, 3, 4, 5, 8, 9, 11, 14, 16, 17, 18, 19, 23, 26, 27, 28, 29, 30, 31]],
    [10, [0, 1, 2]],
    [11, [1, 6, 8, 9, 10, 11, 12, 13, 14, 22]],
    [13, [0]],
    [18, [2, 3]],
  ];
  const m = new Array<number>(CAP_WORDS_V2).fill(0);
  for (const [w, list] of bits) m[w] = list.reduce((acc, b) => (acc | (1 << b)) >>> 0, 0);
  return m;
})();

/** Why the image's CPU cannot be restored on `rt` under `caps`, or undefined. */
export function cpuMismatch(img: CpuInfo, rt: CpuInfo, caps: number): string | undefined {
  if (caps & CPU_CAP.FPU) {
    const missing = (['FPU', 'FXSR', 'OSXSAVE', 'XSAVES'] as const).filter((f) => hasFeature(img.capability, FEATURE[f]) && !hasFeature(rt.capability, FEATURE[f]));
    if (missing.length > 0) return `FPU features of the image missing on this CPU: ${missing.join(', ').toLowerCase()}`;
    const extra = img.xfeaturesMask & ~rt.xfeaturesMask;
    if (extra !== 0n) return `XSAVE features of the image missing on this CPU (0x${extra.toString(16)})`;
    if (img.xsaveSize !== rt.xsaveSize) return `XSAVE area size differs (image ${img.xsaveSize}, this CPU ${rt.xsaveSize})`;
    if (img.xsaveSizeMax !== rt.xsaveSizeMax) return `largest XSAVE area size differs (image ${img.xsaveSizeMax}, this CPU ${rt.xsaveSizeMax})`;
  }
  if (caps & CPU_CAP.INS) {
    for (let w = 0; w < CAP_WORDS_V2; w++) {
      const lack = ((img.capability[w] ?? 0) & (INS_MASK[w] ?? 0) & ~(rt.capability[w] ?? 0)) >>> 0;
      if (lack !== 0) return `instruction set features of the image missing on this CPU (word ${w}, bits 0x${lack.toString(16)})`;
    }
  }
  if (caps & CPU_CAP.CPU) {
    const w = img.capability.findIndex((v, i) => v !== rt.capability[i]);
    if (w >= 0) return `CPU features differ (word ${w}: image 0x${(img.capability[w] ?? 0).toString(16)}, this CPU 0x${(rt.capability[w] ?? 0).toString(16)})`;
  }
  return undefined;
}

/**
 * Check cpuinfo.img in `imagesDir` against this CPU (as `criu cpuinfo
 * check`; no capabilities or `none` checks everything). Throws one line
 * naming what differs.
 */
export function cpuinfoCheck(opts: { imagesDir?: string; cpuCap?: number }): void {
  const dir = resolve(opts.imagesDir ?? '.');
  const img = loadImage(dir, 'CPUINFO');
  const first = img.entries[0];
  const x86 = first?.x86_entry ?? [];
  if (x86.length !== 1) {
    throw new CriuTsError('EIMAGE', `${img.path}: expected one x86 entry, found ${x86.length}`, { file: img.path, field: 'x86_entry' });
  }
  const rt = runtimeCpuInfo();
  const caps = opts.cpuCap === undefined || (opts.cpuCap & CPU_CAP.ALL) === 0 ? CPU_CAP.ALL : opts.cpuCap;
  const why = cpuMismatch(imageCpu(img.path, x86[0] as CpuinfoX86Entry, rt), rt, caps);
  if (why !== undefined) throw new CriuTsError('EUNSUPPORTED', `${img.path}: ${why}`, { file: img.path });
}
