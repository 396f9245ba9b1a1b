import { fstatSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import type { RestoreOptions, RestoreResult } from './options.js';
import { cgroupOptions } from './cgroup-options.js';
import { mountOptions } from './mount-options.js';
import { restoreTree, waitForRoot } from '../restore/index.js';
import { checkJoinNs } from './join-ns.js';
import { readExternals } from './externals.js';
import { CPU_CAP } from './cpu-cap.js';
import { cpuinfoCheck } from './cpuinfo.js';
import { mark } from '../timeline.js';

/**
 * Restore the tree saved in `opts.imagesDir`. Returns the root's pid once
 * every task runs (or is stopped, with `leaveStopped`). On failure nothing
 * restored is left behind.
 */
export async function restore(opts: RestoreOptions): Promise<RestoreResult> {
  mark('restore() called');
  const dir = resolve(opts.imagesDir ?? '.');
  const joins = opts.joinNs ?? [];
  // A namespace is named by a path we open as root: not for a caller who could not enter it himself.
  if (joins.length > 0 && opts.asCaller !== undefined) {
    throw new CriuTsError('EUNSUPPORTED', 'join_ns is not allowed for an unprivileged caller', {});
  }
  const joinNs = checkJoinNs(joins);
  const ext = readExternals(opts.external ?? [], opts.vethPairs ?? [], 'restore');
  // As CRIU: the CPU the images were made on is checked before anything is created.
  if (((opts.cpuCap ?? 0) & CPU_CAP.IMAGE) !== 0) cpuinfoCheck({ imagesDir: dir, cpuCap: opts.cpuCap });
  if (opts.emptyNetNs === true && joinNs.some((j) => j.type === 'net')) {
    throw new CriuTsError('EUSAGE', 'conflicting options: --join-ns net and --empty-ns net', {});
  }
  const pidfile = opts.pidfile === undefined || isAbsolute(opts.pidfile) ? opts.pidfile : join(resolve(opts.workDir ?? dir), opts.pidfile);
  return restoreTree({
    dir,
    workDir: resolve(opts.workDir ?? dir),
    kinds: { shellJob: opts.shellJob ?? false, restoreSibling: opts.restoreSibling ?? false, orphanPtsMaster: opts.orphanPtsMaster, inheritFds: inheritFds(opts.inheritFd), extUnixSk: opts.extUnixSk ?? false, tcpClose: opts.tcpClose ?? false, unprivileged: opts.asCaller !== undefined, joinNs, emptyNetNs: opts.emptyNetNs ?? false, vethPairs: ext.vethPairs, macvlans: ext.macvlans, netdevs: ext.netdevs, ...cgroupOptions(opts), ...mountOptions(opts) },
    leaveStopped: opts.leaveStopped ?? false,
    pidfile,
    progress: opts.progress ?? true,
    notify: opts.notify ?? (() => undefined),
    skipChecksums: opts.skipChecksums ?? false,
    verify: opts.verify === true ? 'refuse' : opts.verify === false ? undefined : opts.verify,
    asCaller: opts.asCaller,
    lazyPages: opts.lazyPages === true ? resolve(opts.workDir ?? dir) : undefined,
  });
}

/** --inherit-fd entries by key; each fd must be open here (CRIU checks it when parsing the option). */
function inheritFds(list: RestoreOptions['inheritFd']): Map<string, number> | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const map = new Map<string, number>();
  for (const { fd, key } of list) {
    try {
      fstatSync(fd);
    } catch (e) {
      throw new CriuTsError('EUSAGE', `--inherit-fd fd[${fd}]:${key}: fd ${fd} is not open`, { fd, key }, e);
    }
    map.set(key, fd);
  }
  return map;
}

/** Wait for a restored root that is our child; returns its exit status like a shell ($? semantics). */
export function waitRestored(pid: number): number {
  return waitForRoot(pid);
}
