/** Start test/subjects/proc-target and read the key=value facts it writes before ready. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSubject } from './subjects.js';
import type { Subject } from './subjects.js';

export interface ProcTarget {
  subject: Subject;
  info: Record<string, string>;
}

export async function startProcTarget(): Promise<ProcTarget> {
  const subject = await startSubject('proc-target', [], { pthread: true });
  const info: Record<string, string> = {};
  for (const line of readFileSync(join(subject.workDir, 'proc-target.info'), 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) info[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { subject, info };
}

export function infoHex(t: ProcTarget, key: string): bigint {
  const v = t.info[key];
  if (v === undefined) throw new Error(`proc-target.info lacks ${key}`);
  return BigInt('0x' + v);
}

export function infoNum(t: ProcTarget, key: string): number {
  const v = t.info[key];
  if (v === undefined) throw new Error(`proc-target.info lacks ${key}`);
  return Number(v);
}
