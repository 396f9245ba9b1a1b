/**
 * One error base for the whole product. Every failure a user can cause or
 * meet carries a stable `code`, structured `data` and the original `cause`;
 * `exitCodeOf` / `rpcErrnoOf` are the one place that maps them outward.
 */

const CRIU_TS_ERROR = Symbol.for('criu-ts.error');

export type ErrorCode =
  | 'ESYSCALL' // a syscall failed (SyscallError)
  | 'EUSAGE' // bad command line or options
  | 'EIMAGE' // malformed or unexpected image content
  | 'ENOIMAGE' // an expected image file is missing
  | 'EUNSUPPORTED' // a resource we cannot checkpoint or restore (yet)
  | 'ENOTASK' // target pid missing or not dumpable
  | 'EINFECT' // remote syscall machinery failed
  | 'EPROC' // /proc content we could not parse
  | 'EDUMP' // dump failed for another reason
  | 'ERESTORE' // restore failed for another reason
  | 'EJSON' // bad JSON given to crit encode
  | 'ETIMEOUT'
  | 'EBUSY' // something we need is taken (a pid to restore, a port, a path)
  | 'EPERM' // the caller may not do this (a task it could not ptrace, images asking for credentials it lacks)
  | 'EINTERNAL';

export class CriuTsError extends Error {
  readonly [CRIU_TS_ERROR] = true;
  readonly code: ErrorCode;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CriuTsError';
    this.code = code;
    this.data = data;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, data: this.data };
  }
}

/** Type guard by symbol, so errors from another copy of the module still match. */
export function isCriuTsError(e: unknown): e is CriuTsError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[CRIU_TS_ERROR] === true;
}

/** errno of a SyscallError anywhere in the cause chain, if any. */
export function errnoOf(e: unknown): number | undefined {
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 8; depth++) {
    if (isCriuTsError(cur) && typeof cur.data['errno'] === 'number') return cur.data['errno'];
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return undefined;
}

/** Errors caused by the user's input: print one line, no stack. */
const USER_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'EUSAGE', 'EIMAGE', 'ENOIMAGE', 'EUNSUPPORTED', 'ENOTASK', 'EJSON', 'ETIMEOUT', 'EBUSY', 'EPERM',
]);

export function isUserError(e: unknown): boolean {
  return isCriuTsError(e) && USER_CODES.has(e.code);
}

/** Exit status for the CLI: CRIU exits 1 on any failure; usage errors too. */
export function exitCodeOf(e: unknown): number {
  if (!isCriuTsError(e)) return 1;
  return 1;
}

/**
 * cr_errno for the RPC service (criu_resp.cr_errno), as CRIU 4.2 sets it:
 * CRIU sends one only for a task that is not there (ESRCH), options it
 * cannot set up (EBADRQC) and a pid taken at restore (EEXIST); for every
 * other failure none (undefined here), and the client reads cr_errmsg
 * (test/rpc/error-parity.test.ts). Errors that carry an errno on purpose
 * (`data.errno` of the error itself, not of a syscall beneath it) send
 * theirs: EBADRQC for bad options, EOPNOTSUPP for request types and RPC
 * options criu-ts does not implement, EPERM for what an unprivileged
 * caller may not ask, ECANCELED when the client refused a notification.
 */
export function rpcErrnoOf(e: unknown): number | undefined {
  if (!isCriuTsError(e)) return undefined;
  const own = e.data['errno'];
  if (e.code !== 'ESYSCALL' && typeof own === 'number') return own;
  switch (e.code) {
    case 'ENOTASK': return 3; // ESRCH
    case 'EBUSY': return e.data['pid'] !== undefined ? 17 : undefined; // a pid in use at restore: EEXIST
    case 'EPERM': return 1;
    default: return undefined;
  }
}

/** One line for a user: message plus the deepest useful cause. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    let msg = e.message;
    const cause = e.cause;
    // Add the cause unless the message already says it (e.g. ends in the same errno name).
    const code = (cause as { code?: unknown } | undefined)?.code;
    const said = typeof code === 'string' && msg.endsWith(code);
    if (cause instanceof Error && !said && !msg.includes(cause.message)) msg += `: ${cause.message}`;
    return msg;
  }
  return String(e);
}
