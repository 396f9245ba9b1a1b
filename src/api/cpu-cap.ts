/**
 * CRIU's cpu_cap: which CPU checks a restore makes (api/cpuinfo.ts), as the
 * --cpu-cap option and criu_opts.cpu_cap carry it. Kept apart from the
 * checks so that parsing the command line loads nothing else.
 */
import { CriuTsError } from '../errors.js';

/** CRIU's cpu_cap bits (criu_opts.cpu_cap on the RPC). */
export const CPU_CAP = { NONE: 0, FPU: 1, CPU: 2, INS: 4, IMAGE: 8, ALL: 1 | 2 | 4, DEFAULT: 1 | 4 } as const;

/**
 * --cpu-cap[=LIST] as CRIU reads it: without a value, everything (and the
 * image); a list of fpu, cpu, ins, all, none, each negated by a leading ^
 * (which lasts until the next comma). Any value but none also writes the
 * image at dump and checks it at restore.
 */
export function parseCpuCap(arg: string | undefined): number {
  if (arg === undefined) return CPU_CAP.ALL | CPU_CAP.IMAGE;
  let caps: number = CPU_CAP.DEFAULT;
  let inverse = false;
  let rest = arg;
  const named: readonly [string, number][] = [['fpu', CPU_CAP.FPU], ['all', CPU_CAP.ALL], ['cpu', CPU_CAP.CPU], ['ins', CPU_CAP.INS]];
  while (rest !== '') {
    if (rest.startsWith('^')) {
      inverse = !inverse;
      rest = rest.slice(1);
      continue;
    }
    if (rest.startsWith(',')) {
      inverse = false;
      rest = rest.slice(1);
      continue;
    }
    if (rest.startsWith('none')) {
      caps = inverse ? CPU_CAP.ALL : CPU_CAP.NONE;
      rest = rest.slice(4);
      continue;
    }
    const hit = named.find(([name]) => rest.startsWith(name));
    if (hit === undefined) throw new CriuTsError('EUSAGE', `--cpu-cap: unknown capability in "${arg}" (fpu, cpu, ins, all, none, ^ to negate)`, { value: arg });
    caps = inverse ? caps & ~hit[1] : caps | hit[1];
    rest = rest.slice(hit[0].length);
  }
  return caps === CPU_CAP.NONE ? caps : caps | CPU_CAP.IMAGE;
}

