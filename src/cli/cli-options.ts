/**
 * What the command line says, once parsed (cli/parse.ts): every option
 * CRIU's CLI takes that criu-ts acts on, with CRIU's defaults. The commands
 * (cli/commands.ts) map it onto the library's options.
 */
import type { CgroupMode } from '../api/options.js';
import type { VethPeerOut } from '../kinds/index.js';
import type { JoinNsRequest } from '../kinds/index.js';

/** CRIU's default verbosity (-v2: errors and warnings). */
export const DEFAULT_LOG_LEVEL = 2;

export type FinalState = 'dead' | 'stopped' | 'running';

export interface CliOptions {
  tree?: number;
  /** absolute */
  imagesDir: string;
  /** absolute; -W, else the images dir */
  workDir: string;
  /** absolute, or '-' for stdout; undefined: log to stderr (CRIU writes no log file without -o) */
  logFile?: string;
  logLevel: number;
  /** absolute (relative names are taken in the work dir) */
  pidfile?: string;
  finalState: FinalState;
  restoreDetached: boolean;
  restoreSibling: boolean;
  /** --skip-checksums: do not check the dump's files against criu-ts-checksums */
  skipChecksums: boolean;
  /** --verify[=warn]: compare the restored tree with the images before it runs */
  verify: 'refuse' | 'warn' | undefined;
  shellJob: boolean;
  extUnixSk: boolean;
  linkRemap: boolean;
  tcpEstablished: boolean;
  tcpClose: boolean;
  skipInFlight: boolean;
  networkLock: 'nftables' | 'iptables' | 'skip' | undefined;
  fileLocks: boolean;
  ghostLimitBytes?: number;
  /** --cpu-cap[=LIST], as CRIU's cpu_cap bits (api/cpuinfo.ts) */
  cpuCap?: number;
  freezeCgroup?: string;
  /** --manage-cgroups[=MODE] (no mode: soft) */
  manageCgroups?: CgroupMode;
  /** --cgroup-root, in order */
  cgroupRoot: string[];
  /** --inherit-fd fd[N]:KEY (restore): our fd N stands for the file CRIU names KEY */
  inheritFd: { fd: number; key: string }[];
  /** -r/--root */
  root?: string;
  /** --external mnt[K]:V and -M K:V, in order */
  extMounts: { key: string; value: string }[];
  /** --external mnt[], -M auto, --enable-external-sharing/-masters (mnt[]:s, mnt[]:m) */
  autoExtMounts: boolean;
  extSharing: boolean;
  extMasters: boolean;
  cgroupYard?: string;
  /** --cgroup-dump-controller, in order */
  cgroupDumpController: string[];
  /** --empty-ns net */
  emptyNetNs: boolean;
  /** --external TYPE[ID]:VALUE, as given, in order (read by the API: api/externals.ts) */
  external: string[];
  /** --veth-pair IN=OUT[@BRIDGE], in order */
  vethPairs: VethPeerOut[];
  /** --join-ns NS:FILE|PID[,EXTRA], in order (checked by the restore) */
  joinNs: JoinNsRequest[];
  timeoutSec?: number;
  displayStats: boolean;
  trackMem: boolean;
  autoDedup: boolean;
  /** --pre-dump-mode, checked and kept for the record: criu-ts's pre-dump always reads the running tasks, both modes alike (docs/incremental.md) */
  preDumpMode?: 'splice' | 'read';
  /** as given: relative names are relative to the images dir */
  prevImagesDir?: string;
  feature?: string;
  /** --address: the service's socket path; the page server's address (page-server, dump --page-server) */
  address?: string;
  /** --port: the page server's TCP port (0: any free one) */
  port?: number;
  /** --page-server: dump pages to a page server */
  pageServer: boolean;
  /** --lazy-pages: restore with a lazy-pages daemon serving private memory */
  lazyPages: boolean;
  /** --status-fd: page-server writes a zero byte there once it listens */
  statusFd?: number;
  /** --socket-mode: the service socket's permission bits (octal) */
  socketMode?: number;
  /** --socket-group: the service socket's group (name or number) */
  socketGroup?: string;
  checkExtra: boolean;
  checkExperimental: boolean;
  /** --close FD, in order */
  closeFds: number[];
  /** --action-script FILE, in order (each is run with "sh -c") */
  actionScripts: string[];
  /** --exec-cmd: the command (words after the command name) run once the restore is done */
  execCmd?: string[];
  /** options accepted but not acted on, as the user spelled them (for the -v2 warning) */
  ignored: string[];
}

/** Every option at CRIU's default. */
export function defaults(): CliOptions {
  return {
    imagesDir: '',
    workDir: '',
    logLevel: DEFAULT_LOG_LEVEL,
    finalState: 'dead',
    restoreDetached: false,
    restoreSibling: false,
    skipChecksums: false,
    verify: undefined,
    pageServer: false,
    lazyPages: false,
    shellJob: false,
    extUnixSk: false,
    linkRemap: false,
    tcpEstablished: false,
    tcpClose: false,
    skipInFlight: false,
    networkLock: undefined,
    fileLocks: false,
    displayStats: false,
    trackMem: false,
    autoDedup: false,
    checkExtra: false,
    checkExperimental: false,
    closeFds: [],
    cgroupRoot: [],
    inheritFd: [],
    extMounts: [],
    autoExtMounts: false,
    extSharing: false,
    extMasters: false,
    cgroupDumpController: [],
    joinNs: [],
    emptyNetNs: false,
    external: [],
    vethPairs: [],
    actionScripts: [],
    ignored: [],
  };
}
