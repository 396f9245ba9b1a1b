/**
 * The options kinds act on, for dump and for restore, resolved once by the
 * core (api/ and dump/ or restore/ options map onto them): no defaults are
 * left for a kind to apply.
 */

/** --network-lock's methods (kinds/files/inet-socket/net-lock.ts) */
export type LockMethod = 'nftables' | 'iptables' | 'skip';

/** --manage-cgroups: what the restore may do to cgroups (CRIU's modes; CRIU's default is soft) */
export type CgroupMode = 'ignore' | 'none' | 'props' | 'soft' | 'full' | 'strict';

/** The cgroup options of both dump and restore (CRIU's --manage-cgroups, --cgroup-root, --cgroup-yard). */
export interface CgroupOptions {
  manageCgroups: CgroupMode;
  /** --cgroup-root [controller:]/newroot, in the order given (no controller: every hierarchy) */
  cgroupRoots: readonly { controller: string | undefined; root: string }[];
  /** --cgroup-yard: a directory with one mount per hierarchy, made by the caller */
  cgroupYard: string | undefined;
  /** --cgroup-dump-controller (repeatable): at dump, only the hierarchies /proc names so ("cpu,cpuacct", "name=systemd", "" for v2); empty: all */
  cgroupDumpControllers: readonly string[];
}

/** The mount options of both dump and restore (CRIU's --root, --external mnt[...], -M/--ext-mount-map). */
export interface MountOptions {
  /** --root: at restore, the "/" of a re-created mount namespace (absolute); at dump unused, as in CRIU */
  root: string | undefined;
  /** --external mnt[K]:V and -M K:V: at dump mountpoint -> key, at restore key -> path */
  extMounts: ReadonlyMap<string, string>;
  /**
   * --external mnt[], -M auto: at dump, a mount that shows a filesystem
   * criu-ts's own namespace mounts too is saved as external, its source
   * the path here; at restore such mounts are bound from that path
   */
  autoExtMounts: boolean;
  /** --enable-external-sharing (mnt[]:s): at dump, an automatic external mount may be shared with a peer group of criu-ts's namespace */
  extSharing: boolean;
  /** --enable-external-masters (mnt[]:m): at dump, an automatic external mount may be a slave of a peer group outside */
  extMasters: boolean;
}

/** The dump options kinds act on, resolved once by the core (no defaults left to apply). */
export interface DumpKindOptions extends CgroupOptions, MountOptions {
  /** -j: the session and controlling tty are outside the tree */
  shellJob: boolean;
  /** RPC orphan_pts_master: a pty slave whose master is outside the tree is dumped (a new master is handed out at restore); absent: false */
  orphanPtsMaster?: boolean;
  /**
   * --external for files (CRIU's keys `file[mnt_id:ino]`, `tty[rdev:dev]`,
   * `unix[ino]`, hex as CRIU prints them but unix's decimal): objects
   * outside the tree that the caller hands back with --inherit-fd at
   * restore. A file so named is saved as a REG entry named by its key, a
   * pty slave and a unix socket are dumped without their peer.
   */
  externals?: ReadonlySet<string>;
  /** --ext-unix-sk: unix sockets whose peer is outside the tree */
  extUnixSk: boolean;
  /** --file-locks */
  fileLocks: boolean;
  /** --ghost-limit in bytes */
  ghostLimit: number;
  /** --link-remap: a file unlinked but still linked elsewhere gets a temporary name */
  linkRemap: boolean;
  /** --tcp-established (established TCP connections go through TCP_REPAIR) */
  tcpEstablished: boolean;
  /** the tree runs on after the dump (-R, --leave-stopped): what a kind takes from it goes back as soon as it is read */
  leaveRunning?: boolean;
  /** --tcp-close: connections are dumped without their state, to be restored closed */
  tcpClose: boolean;
  /** --skip-in-flight: connections a listener has not accepted yet are left out */
  skipInFlight: boolean;
  /** --network-lock: how TCP connections are held still from dump to restore */
  networkLock: LockMethod;
  /** --empty-ns net: the tree's net namespace is saved without its contents (the runtime makes them again) */
  emptyNetNs: boolean;
  /** --external net[INODE]:KEY: net namespaces that are not the tree's to save, only named by KEY */
  externalNetNs?: readonly ExternalNetNs[] | undefined;
}

/** --external net[INODE]:KEY (api/externals.ts) */
export interface ExternalNetNs {
  inode: number;
  key: string;
}

/** The restore options kinds act on, resolved once by the core. */
export interface RestoreKindOptions extends CgroupOptions, MountOptions {
  /** -j: the session and controlling tty are outside the tree */
  shellJob: boolean;
  /**
   * RPC orphan_pts_master: a pty slave whose master was outside the dump
   * gets a new master, made in our process and given to this callback (it
   * owns the fd from then on); undefined: such a slave needs shellJob.
   */
  orphanPtsMaster?: ((master: number) => void) | undefined;
  /**
   * --inherit-fd / RPC inherit_fd: files the caller already holds, by
   * CRIU's key (`pipe:[ino]`, `socket:[ino]`, a regular file's path without
   * its leading '/'), each an fd of our process; a file of the images with
   * that key is this open file instead of a new one.
   */
  inheritFds?: ReadonlyMap<string, number> | undefined;
  /** --restore-sibling (RPC rst_sibling): the tree's top task is born our caller's child, from our own process (restore/stub.ts cloneSiblingTop) */
  restoreSibling: boolean;
  /** --ext-unix-sk */
  extUnixSk: boolean;
  /** --tcp-close: TCP connections come back closed (TCP_CLOSE, shut down both ways) */
  tcpClose: boolean;
  /** the restore acts for an unprivileged caller (docs/security.md): a kind gives back only what the caller could make itself */
  unprivileged: boolean;
  /** --join-ns: existing namespaces the tree goes into instead of new ones (kinds/ns/join.ts) */
  joinNs: readonly JoinNs[];
  /** --empty-ns net: the tree's net namespace is made new and left empty for the runtime to fill (setup-namespaces) */
  emptyNetNs: boolean;
  /** --veth-pair IN=OUT[@BRIDGE] / --external veth[IN]:OUT[@BRIDGE] (RPC veths): a veth whose peer was outside the tree's net namespace */
  vethPairs: readonly VethPeerOut[];
  /** --external macvlan[IN]:OUTDEV: the device of our namespace a macvlan of the tree's sits on */
  macvlans: readonly MacvlanLower[];
  /** --external netdev[IN]:OUT: a veth of our namespace, made by the caller, moved in to be the tree's IN */
  netdevs: readonly NetdevMoved[];
}

/** A veth of the tree whose other end is made in criu-ts's namespace, named `outside`, attached to `bridge` when given. */
export interface VethPeerOut {
  inside: string;
  outside: string;
  bridge?: string;
}

/** A veth of the tree (`inside`) that the caller made beforehand in criu-ts's namespace as `outside`: moved in, not made. */
export interface NetdevMoved {
  inside: string;
  outside: string;
}

/** A macvlan of the tree, made again on `lower`, a device of criu-ts's namespace. */
export interface MacvlanLower {
  inside: string;
  lower: string;
}

/** One --join-ns as a caller gives it: CRIU's three parts (RPC join_namespace: ns, ns_file, extra_opt); checked by kinds/ns/join.ts. */
export interface JoinNsRequest {
  ns: string;
  file: string;
  extra?: string;
}

/** One --join-ns, checked (kinds/ns/join.ts): the type and the file that names the namespace. */
export interface JoinNs {
  type: 'net' | 'uts' | 'ipc';
  /** the namespace file as given, or /proc/PID/ns/TYPE for a pid */
  file: string;
}
