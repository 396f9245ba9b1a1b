/**
 * CRIU's action-script points (criu/action-scripts.c): the moments of a
 * dump or a restore at which --action-script scripts run and the RPC's
 * notify_scripts send a NOTIFY. The core reports each point as it reaches
 * it, with the tree's root pid; the CLI and the RPC decide what to do.
 */

/**
 * A dump's points, in the order it reaches them (network-unlock only when
 * the tree lives on; status-ready only with --lazy-pages, once its page
 * server listens).
 */
export const DUMP_ACTION_POINTS = ['pre-dump', 'network-lock', 'post-dump', 'status-ready', 'network-unlock'] as const;

/** A restore's points, in the order it reaches them. */
export const RESTORE_ACTION_POINTS = [
  'pre-restore', 'setup-namespaces', 'post-setup-namespaces', 'post-restore', 'network-unlock', 'pre-resume', 'post-resume',
] as const;

export type DumpActionPoint = (typeof DUMP_ACTION_POINTS)[number];
export type RestoreActionPoint = (typeof RESTORE_ACTION_POINTS)[number];
export type ActionPoint = DumpActionPoint | RestoreActionPoint;

export interface ActionEvent<P extends ActionPoint = ActionPoint> {
  point: P;
  /** the tree's root: the pid dumped, or the pid the restore gives the root (every task keeps its pid) */
  rootPid: number;
}

/** Called at each point as it is reached; a rejection aborts the dump or restore there. */
export type ActionNotify<P extends ActionPoint = ActionPoint> = (e: ActionEvent<P>) => Promise<void> | void;
