/** The values of command-line options: checked, converted, and refused with one usage line naming the option. */
import { CriuTsError } from '../errors.js';

export function usage(message: string, data: Record<string, unknown> = {}): CriuTsError {
  return new CriuTsError('EUSAGE', message, data);
}

export function badArg(shown: string, value: string | undefined): CriuTsError {
  return usage(`invalid argument for ${shown}: ${value ?? ''}`, { option: shown, value });
}

export function verifyMode(shown: string, value: string | undefined): 'refuse' | 'warn' {
  if (value === undefined || value === 'refuse') return 'refuse';
  if (value === 'warn') return 'warn';
  throw badArg(shown, value);
}

export function nonEmpty(shown: string, value: string | undefined): string {
  if (value === undefined || value === '') throw badArg(shown, value);
  return value;
}

export function intArg(shown: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || !/^\d+$/.test(value)) throw badArg(shown, value);
  const n = Number(value);
  if (n < min || n > max) throw badArg(shown, value);
  return n;
}

/** --ghost-limit: bytes with an optional K, M or G suffix (powers of 1024, like CRIU's KILO/MEGA/GIGA). */
export function sizeArg(shown: string, value: string | undefined): number {
  const m = /^(\d+)([KMG]?)$/.exec(value ?? '');
  if (m === null) throw badArg(shown, value);
  const shift = { '': 0, K: 10, M: 20, G: 30 }[m[2] ?? ''] ?? 0;
  return Number(m[1]) * 2 ** shift;
}

/**
 * -v: one more; -vv...: one per v; -vN / --verbosity=N: exactly N. Any other
 * value is read the way CRIU reads it (atoi: leading digits, else 0), so
 * zdtm's "-verbosity=0" (short -v with the argument "erbosity=0") means 0.
 */
export function verbosity(value: string | undefined, current: number): number {
  if (value === undefined) return current + 1;
  if (value.startsWith('v')) return current + value.length + 1;
  const m = /^\s*([+-]?\d+)/.exec(value);
  return m === null ? 0 : Number(m[1]);
}
