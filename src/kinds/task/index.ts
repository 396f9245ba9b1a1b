/**
 * The per-thread parts of kinds/task, called by the core per thread: a
 * thread's own state, its credentials and its seccomp filters. The
 * task-state kinds (one per part of the task core) are entries of the
 * registry (kinds/index.ts KINDS).
 */
export type { TaskRestorePoint, TaskStateKind } from './types.js';
export { askAllThreads, askThreads, dumpThreadCore, threadStateSteps, restoreFpu, type ThreadAnswers } from './thread.js';
export { restoreThreadSignals } from './signals.js';
export { restoreChildSubreaper } from './attrs.js';
export { dumpCreds, credsPutBytes, credsSteps } from './creds.js';
export { SeccompCollector, restoreThreadSeccomp, seccompSharedByThreads } from './seccomp.js';
