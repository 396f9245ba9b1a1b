import { externalFileKey, externalFileKeys } from './external-files.js';
import { resolve } from 'node:path';
import type { DumpOptions, DumpResult } from './options.js';
import { dumpTree } from '../dump/index.js';
import type { DumpTreeOptions } from '../dump/options.js';
import { CriuTsError } from '../errors.js';
import { cgroupOptions } from './cgroup-options.js';
import { readExternals } from './externals.js';
import { mountOptions } from './mount-options.js';
import { RESOURCE_KINDS, dumpOptionDefaults } from '../kinds/index.js';
import { CPU_CAP } from './cpu-cap.js';
import { cpuinfoDump } from './cpuinfo.js';

/** --ghost-limit's default, as CRIU's: 1 MiB */
const GHOST_LIMIT_BYTES = 1 << 20;

/**
 * Checkpoint the process tree rooted at `opts.pid` into `opts.imagesDir`.
 * The tree is killed afterwards unless `leaveRunning`/`leaveStopped`; on
 * failure it is left running exactly as before.
 */
export async function dump(opts: DumpOptions): Promise<DumpResult> {
  // A dump that was killed before it was over may have left something of its own (its network lock).
  for (const k of RESOURCE_KINDS) k.clearStale?.();
  const core = coreOptions(opts);
  // As CRIU: the CPU is saved before any task is touched.
  if (((opts.cpuCap ?? 0) & CPU_CAP.IMAGE) !== 0) cpuinfoDump({ imagesDir: core.dir });
  return dumpTree(core);
}

/** The public options resolved once, with CRIU's defaults, into what the dump core takes. */
export function coreOptions(opts: DumpOptions): DumpTreeOptions {
  // Checked (a type no kind takes is refused); but net[], the ones CRIU knows describe the restore.
  const ext = readExternals(opts.external ?? [], [], 'dump');
  return {
    pid: opts.pid,
    dir: resolve(opts.imagesDir ?? '.'),
    workDir: resolve(opts.workDir ?? opts.imagesDir ?? '.'),
    kinds: {
      shellJob: opts.shellJob ?? false,
      orphanPtsMaster: opts.orphanPtsMaster ?? false,
      // file[..] / tty[..] of --external (or externalFiles): saved by key only (api/external-files.ts).
      externals: externalFileKeys([...(opts.externalFiles ?? []), ...(opts.external ?? []).filter((e) => externalFileKey(e) !== undefined)]),
      extUnixSk: opts.extUnixSk ?? false,
      fileLocks: opts.fileLocks ?? false,
      ghostLimit: opts.ghostLimit ?? GHOST_LIMIT_BYTES,
      linkRemap: opts.linkRemap ?? false,
      tcpEstablished: opts.tcpEstablished ?? false,
      leaveRunning: opts.leaveRunning === true || opts.leaveStopped === true,
      tcpClose: opts.tcpClose ?? false,
      skipInFlight: opts.skipInFlight ?? false,
      // No kind to default it from the host: no lock.
      networkLock: opts.networkLock ?? dumpOptionDefaults().networkLock ?? 'skip',
      emptyNetNs: opts.emptyNetNs ?? false,
      externalNetNs: ext.netNs,
      ...cgroupOptions(opts),
      ...mountOptions(opts),
    },
    after: opts.leaveRunning ? 'resume' : opts.leaveStopped ? 'stop' : 'kill',
    freezeCgroup: opts.freezeCgroup,
    timeoutMs: (opts.timeoutSec ?? 10) * 1000,
    prevDir: opts.prevImagesDir === undefined ? undefined : resolve(opts.imagesDir ?? '.', opts.prevImagesDir),
    trackMem: opts.trackMem ?? false,
    pageServer: opts.pageServer,
    lazyPages: opts.lazyPages,
    progress: opts.progress ?? true,
    notify: opts.notify ?? (() => undefined),
    asCaller: opts.asCaller,
  };
}
