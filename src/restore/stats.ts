/** stats-restore.img: what CRIU's test suite and tools read of a restore (times, pages restored, compared, skipped by COW). */
import type { StatsEntry } from '../images/messages.js';
import { imageFile, storeImage } from '../images/index.js';
import { logger } from '../log.js';
import type { RestoreStats } from './options.js';

const log = logger('restore');

/** stats-restore, as CRIU writes it; a dump dir we cannot write to only loses the stats. */
export function writeRestoreStats(dir: string, s: RestoreStats): void {
  const entry: StatsEntry = {
    restore: {
      pages_compared: BigInt(s.pagesCompared),
      pages_skipped_cow: BigInt(s.pagesSkippedCow),
      forking_time: s.forkingTimeUs,
      restore_time: s.restoreTimeUs,
      pages_restored: BigInt(s.pagesRestored),
    },
  };
  try {
    storeImage(dir, 'STATS', 'restore', [entry]);
  } catch (e) {
    log.warn(`${imageFile('STATS', 'restore')} not written: ${(e as Error).message}`);
  }
}
