/** What a feature probe of `criu-ts check` answers (sys/probe*.ts). */
import { errnoName } from './errno.js';

export interface ProbeResult {
  ok: boolean;
  reason?: string;
}

export const yes: ProbeResult = { ok: true };
export function no(reason: string): ProbeResult {
  return { ok: false, reason };
}
export function errnoReason(what: string, negErrno: number): string {
  return `${what}: ${errnoName(-negErrno)}`;
}
