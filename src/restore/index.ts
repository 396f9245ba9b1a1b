import type { RestoreOptions, RestoreResult } from '../api/options.js';
import { CriuTsError } from '../errors.js';
export async function restoreTree(_opts: RestoreOptions): Promise<RestoreResult> {
  throw new CriuTsError('ERESTORE', 'restore not implemented');
}
export function waitForRoot(_pid: number): number {
  return 0;
}
