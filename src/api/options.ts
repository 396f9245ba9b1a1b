/**
 * Options of the public API. Names mirror CRIU's command-line options
 * (camelCase of the long option) so CRIU's documentation applies.
 */
import type { ActionNotify, DumpActionPoint, RestoreActionPoint } from '../action-points.js';
import type { CallerCreds } from '../caller.js';
import type { CgroupMode } from '../kinds/index.js';
import type { JoinNsRequest } from '../kinds/index.js';
import type { VethPeerOut } from '../kinds/index.js';

export type { DumpStats, DumpResult } from '../dump/options.js';
export type { RestoreStats, RestoreResult } from '../restore/options.js';
export type { ActionEvent, ActionNotify, ActionPoint, DumpActionPoint, RestoreActionPoint } from '../action-points.js';
export type { CallerCreds } from '../caller.js';
export type { CgroupMode } from '../kinds/index.js';

export interface CommonOptions {
  /** -D/--images-dir: where images are read or written (default: cwd) */
  imagesDir?: string;
  /** -W/--work-dir: where logs and pidfiles go (default: imagesDir) */
  workDir?: string;
  /** -j/--shell-job: the tree is a job of a shell: its session and controlling tty are outside it */
  shellJob?: boolean;
  /** --ext-unix-sk: allow unix sockets whose peer is outside the tree */
  extUnixSk?: boolean;
  /** --tcp-established */
  tcpEstablished?: boolean;
  /** --tcp-close: dump TCP connections without their state (the dumped tree's death closes them); restore them closed */
  tcpClose?: boolean;
  /** --skip-in-flight: connections a listener has not accepted yet are left out (their clients see a reset) */
  skipInFlight?: boolean;
  /** --network-lock: hold TCP connections still from dump to restore (default nftables where nft is installed, else skip) */
  networkLock?: 'nftables' | 'iptables' | 'skip';
  /**
   * --empty-ns net (RPC empty_ns = CLONE_NEWNET, as runc sends it): the tree's net namespace is dumped without
   * its devices, addresses, routes and firewall, and restored as a new, empty one (lo down) that the caller fills
   * at setup-namespaces; the network lock holds it until the tree runs
   */
  emptyNetNs?: boolean;
  /**
   * --external TYPE[ID]:VALUE, CRIU's form, as given (api/externals.ts): veth[IN]:OUT[@BRIDGE] and
   * macvlan[IN]:OUTDEV at restore; other types are refused
   */
  external?: string[];
  /** --file-locks */
  fileLocks?: boolean;
  /** --link-remap: a file unlinked but still linked elsewhere gets a temporary name at dump (removed by the restore) */
  linkRemap?: boolean;
  /** --ghost-limit in bytes (CRIU default 1 MiB) */
  ghostLimit?: number;
  /**
   * --cpu-cap (CRIU's cpu_cap bits, api/cpuinfo.ts CPU_CAP): with the IMAGE bit, a dump writes this CPU
   * to cpuinfo.img and a restore first checks that image against the CPU it runs on (fpu, ins, cpu rules)
   */
  cpuCap?: number;
  /**
   * --manage-cgroups: at restore, what may be done to cgroups: 'ignore'
   * (tasks stay in ours), 'none' and 'props' (the cgroups must exist;
   * 'props' sets their properties), 'soft' (default: missing ones are made,
   * with their properties), 'full' (made or not, properties set), 'strict'
   * (none may exist). At dump, 'ignore' saves memberships without the
   * directories and properties.
   */
  manageCgroups?: CgroupMode;
  /** --cgroup-root [controller:]/newroot (repeatable): at dump, walk the cgroups from there; at restore, move the tree's cgroups there */
  cgroupRoot?: readonly string[];
  /** --cgroup-yard DIR: one mount per cgroup hierarchy, made by the caller, used instead of our own mounts */
  cgroupYard?: string;
  /** --cgroup-dump-controller NAME (repeatable): dump only these hierarchies, named as /proc/PID/cgroup names them ("cpu,cpuacct", "name=systemd"); default all */
  cgroupDumpController?: readonly string[];
  /** -r/--root DIR: at restore, the "/" of the tree's mount namespace when it had its own (required then); ignored otherwise, as by CRIU */
  root?: string;
  /**
   * External mounts (--external mnt[K]:V, -M/--ext-mount-map K:V): at dump,
   * K is a mountpoint as the tree sees it and V the key saved for it; at
   * restore, K is that key and V the path bound there.
   */
  extMounts?: readonly { key: string; value: string }[];
  /** --external mnt[], -M auto (RPC auto_ext_mnt): external mounts found automatically at dump, bound again from their paths at restore */
  autoExtMounts?: boolean;
  /** --enable-external-sharing, mnt[]:s (RPC ext_sharing): an automatic external mount may be shared with a peer group of ours */
  extSharing?: boolean;
  /** --enable-external-masters, mnt[]:m (RPC ext_masters): an automatic external mount may be a slave of a peer group outside */
  extMasters?: boolean;
  /** show progress on a terminal (bytes and pages, tasks done) */
  progress?: boolean;
  /**
   * Act for this (unprivileged) user, as the RPC service does for its
   * callers (docs/security.md): a dump refuses any task the user could not
   * ptrace itself; a restore refuses images asking for other credentials,
   * capabilities, set-id or foreign-owned files, and opens the tasks' files
   * with the user's permissions.
   */
  asCaller?: CallerCreds;
}

export interface DumpOptions extends CommonOptions {
  /** -t/--tree: root of the process tree */
  pid: number;
  /** RPC orphan_pts_master: a pty slave whose master is outside the tree is dumped; restore hands out a new master */
  orphanPtsMaster?: boolean;
  /**
   * --external file[MNT_ID:INODE] / tty[RDEV:DEV] (hex, CRIU's syntax):
   * files and terminals outside the tree, saved by key only; the restore
   * needs them back through inheritFd with the same key.
   */
  externalFiles?: readonly string[];
  /** -R/--leave-running */
  leaveRunning?: boolean;
  /** -s/--leave-stopped */
  leaveStopped?: boolean;
  /** --freeze-cgroup */
  freezeCgroup?: string;
  /** --timeout seconds for stopping the tree */
  timeoutSec?: number;
  /** --prev-images-dir (pre-dump chains), relative to imagesDir */
  prevImagesDir?: string;
  /** --track-mem */
  trackMem?: boolean;
  /** --page-server --address A --port P: pagemaps and pages go to a page server (`criu-ts page-server` or CRIU's) */
  pageServer?: { address: string; port: number };
  /**
   * --lazy-pages --address A --port P (CRIU's lazy migration): private
   * anonymous pages are not written; once the images are, the dump serves
   * them from the still frozen tree on A:P (0: any free port) to one
   * `lazy-pages --page-server` daemon, and only then does the tree go
   * (killed, or as leaveRunning/leaveStopped say). `onListening` runs once
   * it listens (after the status-ready notification).
   */
  lazyPages?: { address: string; port: number; onListening?: (port: number) => void };
  /** action-script points (pre-dump, network-lock, post-dump, network-unlock) as they are reached; a rejection aborts the dump */
  notify?: ActionNotify<DumpActionPoint>;
}

export interface RestoreOptions extends CommonOptions {
  /**
   * --restore-sibling (RPC rst_sibling): the restored root is born a child
   * of this process's parent, as CRIU makes it, and that parent waits for
   * it (without: the root is this process's child, through the subreaper).
   */
  restoreSibling?: boolean;
  /**
   * RPC orphan_pts_master: for each pty whose master was outside the dump,
   * a new master (an fd of this process, the callee's to close) is made at
   * the dumped index and given here while the tree is restored; the tasks
   * get the slave as they had it. Without it such a slave needs shellJob.
   */
  orphanPtsMaster?: (master: number) => void;
  /**
   * --inherit-fd: files the caller holds open in this process, by CRIU's
   * key (`pipe:[ino]`, `socket:[ino]`, a regular file's path without its
   * leading '/'): a file of the images with that key becomes this open
   * file, not a new one (runc hands back the container's stdio pipes so).
   */
  inheritFd?: readonly { fd: number; key: string }[];
  /** --pidfile: write the restored root's pid here (relative to workDir) */
  pidfile?: string;
  /** -s/--leave-stopped: leave tasks stopped after restore */
  leaveStopped?: boolean;
  /** --skip-checksums: restore even if files differ from the dump's criu-ts-checksums (checked by default) */
  skipChecksums?: boolean;
  /**
   * --verify (beyond CRIU): before any task runs, read the restored tree back with the dump's collectors and
   * compare it with the images; 'refuse' (or true) fails the restore on a difference, 'warn' only logs it
   */
  verify?: boolean | 'refuse' | 'warn';
  /** --veth-pair IN=OUT[@BRIDGE] (RPC veths): a veth whose peer was outside gets it made in our namespace (= --external veth[IN]:OUT[@BRIDGE]) */
  vethPairs?: VethPeerOut[];
  /** --join-ns NS:FILE|PID: existing namespaces (net, uts, ipc) the tree goes into instead of new ones */
  joinNs?: JoinNsRequest[];
  /** action-script points (pre-restore, setup-namespaces, ..., post-resume) as they are reached; a rejection aborts the restore */
  notify?: ActionNotify<RestoreActionPoint>;
  /**
   * --lazy-pages: private anonymous memory is filled on demand by a running
   * `criu-ts lazy-pages` daemon (its socket in workDir, default the images dir); the restore returns once the tasks run
   */
  lazyPages?: boolean;
}

export interface CheckOptions {
  /** --feature NAME: check one feature (exit 0 when supported) */
  feature?: string;
  /** --extra: probe EXTRA_FEATURES too (without `feature`; the basic ones are always probed) */
  extra?: boolean;
  /** --experimental: probe EXPERIMENTAL_FEATURES too */
  experimental?: boolean;
}

export interface CheckResult {
  ok: boolean;
  /** feature name -> supported, with a reason when not; only the features probed */
  features: Record<string, { ok: boolean; reason?: string }>;
}
