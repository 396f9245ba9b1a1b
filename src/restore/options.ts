/**
 * What the restore core is asked to do, resolved once (src/api maps its
 * public options onto this), and what it answers.
 */
import type { ActionNotify, RestoreActionPoint } from '../action-points.js';
import type { RestoreKindOptions } from '../kinds/index.js';
import type { CallerCreds } from '../caller.js';

export interface RestoreTreeOptions {
  /** absolute images dir */
  dir: string;
  /** absolute work dir (--work-dir): stats-restore goes there, as CRIU's; default the images dir */
  workDir?: string | undefined;
  /** the options kinds act on */
  kinds: RestoreKindOptions;
  /** leave every task stopped (SIGSTOP) instead of running */
  leaveStopped: boolean;
  /** absolute path to write the restored root's pid to, if any */
  pidfile: string | undefined;
  /** show progress on a terminal */
  progress: boolean;
  notify: ActionNotify<RestoreActionPoint>;
  /** do not check the dump's files against criu-ts-checksums */
  skipChecksums: boolean;
  /** compare the restored tree with the images before it runs (restore/verify/): fail on a difference, or only log it */
  verify: 'refuse' | 'warn' | undefined;
  /** --lazy-pages: the work dir where the lazy-pages daemon's socket is; undefined: every page is filled now */
  lazyPages: string | undefined;
  /** an unprivileged caller this restore acts for (src/restore/authorize.ts), or undefined for root's own restore */
  asCaller: CallerCreds | undefined;
}

export interface RestoreStats {
  forkingTimeUs: number;
  restoreTimeUs: number;
  pagesRestored: number;
  /** pages of children compared with what they inherited from their parent (CRIU's counter) */
  pagesCompared: number;
  /** of those, pages left shared with the parent (copy-on-write kept) */
  pagesSkippedCow: number;
}

export interface RestoreResult {
  /** pid of the restored root task */
  pid: number;
  pids: number[];
  stats: RestoreStats;
}
