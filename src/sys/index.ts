/** The kernel boundary: the only module tree that calls libc or raw syscalls. */
export * from './error.js';
export * from './errno.js';
export * from './nr.js';
export * from './arch-x86.js';
export * from './ptrace.js';
export * from './memory.js';
export * from './process.js';
export { sys, sysTry, sysBig, addr } from './libc.js';
export * from './fhandle.js';
export * from './socket.js';
export * from './seqpacket.js';
export * from './nodes.js';
export * from './xstate.js';
export * from './uffd.js';
export * from './safe-fs.js';
export * from './ns.js';
export * from './ipc.js';
export * from './mount-api.js';
