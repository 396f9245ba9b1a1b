/**
 * What the dump core is asked to do, resolved once (src/api maps its public
 * options onto this; no default is applied anywhere below), and what it
 * answers.
 */
import type { ActionNotify, DumpActionPoint } from '../action-points.js';
import type { DumpKindOptions } from '../kinds/index.js';
import type { CallerCreds } from '../caller.js';

export interface DumpTreeOptions {
  /** root of the tree */
  pid: number;
  /** absolute images dir */
  dir: string;
  /** absolute work dir (--work-dir, RPC work_dir_fd), where stats-dump goes as CRIU's; default the images dir */
  workDir?: string | undefined;
  /** the options kinds act on */
  kinds: DumpKindOptions;
  /** what becomes of the tree after a dump that succeeded (a failed dump always resumes it) */
  after: 'kill' | 'resume' | 'stop';
  /** --freeze-cgroup */
  freezeCgroup: string | undefined;
  /** how long stopping the tree may take */
  timeoutMs: number;
  /** --prev-images-dir, absolute; undefined: no parent images */
  prevDir: string | undefined;
  /** --track-mem (kept after the dump only with `after: 'resume'`) */
  trackMem: boolean;
  /** --page-server --address --port: pagemaps and pages go to a page server instead of the images dir */
  pageServer: { address: string; port: number } | undefined;
  /**
   * --lazy-pages (CRIU's lazy migration): the pages of private anonymous
   * memory stay in the frozen tree, and once the images are written a page
   * server on `address`:`port` serves them to one `lazy-pages --page-server`
   * daemon; the tree then goes as `after` says. `onListening`: the
   * status-fd byte, once it listens.
   */
  lazyPages: { address: string; port: number; onListening?: (port: number) => void } | undefined;
  /** show progress on a terminal */
  progress: boolean;
  /** action-script points (pre-dump, network-lock, post-dump, network-unlock) as they are reached; a rejection aborts the dump */
  notify: ActionNotify<DumpActionPoint>;
  /** an unprivileged caller this dump acts for (src/dump/authorize.ts), or undefined for root's own dump */
  asCaller: CallerCreds | undefined;
}

export interface DumpStats {
  freezingTimeUs: number;
  frozenTimeUs: number;
  memdumpTimeUs: number;
  memwriteTimeUs: number;
  pagesScanned: number;
  pagesSkippedParent: number;
  pagesWritten: number;
  /** pages a lazy dump left in the tasks for its page server (pages_lazy) */
  pagesLazy: number;
  pagesZero: number;
}

export interface DumpResult {
  /** every pid dumped (root first) */
  pids: number[];
  stats: DumpStats;
}
