/** /proc parsers: synchronous, one read per file, typed results; EPROC on odd content, ENOTASK when the pid is gone. */
export * from './maps.js';
export * from './status.js';
export * from './stat.js';
export * from './limits.js';
export * from './fdinfo.js';
export * from './mountinfo.js';
export * from './pagemap.js';
export * from './children.js';
export * from './timers.js';
export * from './misc.js';
export { procDir } from './read.js';
export * from './net-sockets.js';
export * from './timens.js';
export * from './ns.js';
export * from './sysctl.js';
export * from './kernel.js';
