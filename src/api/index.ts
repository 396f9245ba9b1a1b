/**
 * criu-ts public library API. One function per file; the CLI and the RPC
 * service are thin layers over these.
 *
 * @example
 *   import { dump, restore } from 'criu-ts';
 *   await dump({ pid: 1234, imagesDir: '/tmp/ckpt' });
 *   const { pid } = await restore({ imagesDir: '/tmp/ckpt' });
 */
export { dump } from './dump.js';
export { preDump } from './pre-dump.js';
export { dedup } from './dedup.js';
export { restore, waitRestored } from './restore.js';
export { check } from './check.js';
export { cpuinfoDump, cpuinfoCheck, CPU_CAP } from './cpuinfo.js';
export type * from './options.js';
export { CriuTsError, isCriuTsError } from '../errors.js';
