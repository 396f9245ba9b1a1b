/**
 * Options of the public API. Names mirror CRIU's command-line options
 * (camelCase of the long option) so CRIU's documentation applies.
 */
export type { DumpStats, DumpResult } from '../dump/options.js';

export interface CommonOptions {
  /** -D/--images-dir: where images are read or written (default: cwd) */
  imagesDir?: string;
  /** -W/--work-dir: where logs and pidfiles go (default: imagesDir) */
  workDir?: string;
  /** -j/--shell-job: the tree is a job of a shell: its session and controlling tty are outside it */
  shellJob?: boolean;
  /** --ext-unix-sk: allow unix sockets whose peer is outside the tree */
  extUnixSk?: boolean;
  /** --tcp-established */
  tcpEstablished?: boolean;
  /** --file-locks */
  fileLocks?: boolean;
  /** --link-remap: a file unlinked but still linked elsewhere gets a temporary name at dump (removed by the restore) */
  linkRemap?: boolean;
  /** --ghost-limit in bytes (CRIU default 1 MiB) */
  ghostLimit?: number;
  /** show progress on a terminal (bytes and pages, tasks done) */
  progress?: boolean;
}

export interface DumpOptions extends CommonOptions {
  /** -t/--tree: root of the process tree */
  pid: number;
  /** -R/--leave-running */
  leaveRunning?: boolean;
  /** -s/--leave-stopped */
  leaveStopped?: boolean;
  /** --freeze-cgroup */
  freezeCgroup?: string;
  /** --timeout seconds for stopping the tree */
  timeoutSec?: number;
  /** --prev-images-dir (pre-dump chains), relative to imagesDir */
  prevImagesDir?: string;
  /** --track-mem */
  trackMem?: boolean;
  /** --pre-dump-mode splice|read (accepted) */
  preDumpMode?: 'splice' | 'read';
  /** action-script points (pre-dump, network-lock, post-dump, network-unlock) as they are reached; a rejection aborts the dump */
  notify?: (script: string) => Promise<void> | void;
}

export interface RestoreOptions extends CommonOptions {
  /** -d/--restore-detached: do not wait for the restored root */
  detach?: boolean;
  /** --pidfile: write the restored root's pid here (relative to workDir) */
  pidfile?: string;
  /** --restore-sibling: restored root becomes a sibling, not a child, of the caller */
  restoreSibling?: boolean;
  /** -s/--leave-stopped: leave tasks stopped after restore */
  leaveStopped?: boolean;
  /** action-script points (pre-restore, setup-namespaces, ..., post-resume) as they are reached; a rejection aborts the restore */
  notify?: (script: string) => Promise<void> | void;
}

export interface RestoreStats {
  forkingTimeUs: number;
  restoreTimeUs: number;
  pagesRestored: number;
}

export interface RestoreResult {
  /** pid of the restored root task */
  pid: number;
  pids: number[];
  stats: RestoreStats;
}

export interface CheckOptions {
  /** --feature NAME: check one feature (exit 0 when supported) */
  feature?: string;
}

export interface CheckResult {
  ok: boolean;
  /** feature name -> supported, with a reason when not */
  features: Record<string, { ok: boolean; reason?: string }>;
}
