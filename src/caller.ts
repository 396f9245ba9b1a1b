/**
 * Who a dump or restore acts for. The RPC fills it from the client's
 * SO_PEERCRED; the core checks every task and file against it.
 */

/** Real ids (the kernel's PTRACE_MODE_ATTACH_REALCREDS compares these). */
export interface CallerCreds {
  uid: number;
  gid: number;
  /** supplementary groups */
  groups: number[];
  /** the caller holds CAP_SYS_PTRACE (in criu-ts's user namespace): ptrace rules do not limit it */
  capSysPtrace: boolean;
  /** the caller's pid, as criu-ts sees it (RPC: SO_PEERCRED): Yama's ptrace_scope 1 lets it trace only its descendants */
  pid?: number;
}
