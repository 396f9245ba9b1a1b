/**
 * criu_opts → API options, the way CRIU's setup_opts_from_req reads them:
 * proto2 defaults applied for absent fields (CRIU_OPTS_DEFAULTS), the
 * images directory opened through the client's own descriptor
 * (/proc/<peer pid>/fd/<images_dir_fd>, as CRIU does; nothing travels over
 * SCM_RIGHTS), the work directory from work_dir_fd or else the images
 * directory, and the log file (a bare name) inside the work directory.
 *
 * Options criu-ts cannot honour are refused when leaving them out would
 * change the result (like the CLI's "not supported yet"), and logged as
 * ignored when it would not.
 */
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { CgroupMode, CommonOptions, DumpOptions, RestoreOptions } from '../api/options.js';
import { parseAutoExternalMount, parseExternalMount } from '../api/mount-options.js';
import { signalReady } from '../api/page-server.js';
import { CriuTsError } from '../errors.js';
import { CLONE_NEWNET } from '../sys/index.js';
import type { CriuOpts } from '../images/messages.js';
import { CRIU_OPTS_DEFAULTS } from '../images/schema/rpc.js';
import { logger } from '../log.js';
import type { RpcMode } from './transport.js';
import { EBADRQC, EOPNOTSUPP } from '../sys/index.js';

const log = logger('rpc');

/** CRIU's file name when the client names no log file (DEFAULT_LOG_FILENAME). */
export const DEFAULT_RPC_LOG_FILE = 'criu.log';


/** CRIU answers every option it cannot set up with cr_errno EBADRQC ("Bad options" in pycriu). */
export function badOptions(message: string, data: Record<string, unknown> = {}): CriuTsError {
  return new CriuTsError('EUSAGE', message, { ...data, errno: EBADRQC });
}

export type Operation = 'dump' | 'restore' | 'check';

/** criu_opts with the proto2 defaults CRIU would see for absent fields. */
export type EffectiveOpts = CriuOpts & { images_dir_fd: number; log_level: number; ghost_limit: number };

export function withDefaults(o: CriuOpts | undefined): EffectiveOpts {
  const out: EffectiveOpts = {
    ...o,
    images_dir_fd: o?.images_dir_fd ?? CRIU_OPTS_DEFAULTS.images_dir_fd,
    log_level: o?.log_level ?? CRIU_OPTS_DEFAULTS.log_level,
    ghost_limit: o?.ghost_limit ?? CRIU_OPTS_DEFAULTS.ghost_limit,
  };
  return out;
}

export interface RequestDirs {
  /** absent only for CHECK without a log file */
  imagesDir?: string;
  workDir?: string;
  /** absolute path of the log file, or undefined for stderr / no file */
  logFile?: string;
}

/**
 * A directory the client holds open, reached through /proc/PID/fd/N. The
 * link's text is used when it names the same directory from here (restored
 * tasks open image files by that path); otherwise (another mount namespace)
 * the /proc path itself, which works as long as the client keeps the fd.
 */
export function dirOfPeerFd(pid: number, fd: number, what: string): string {
  const link = `/proc/${pid}/fd/${fd}`;
  let st;
  try {
    st = statSync(link);
  } catch (e) {
    throw badOptions(`cannot open ${what} ${link}: ${(e as Error).message}`, { pid, fd });
  }
  if (!st.isDirectory()) throw badOptions(`${what} fd ${fd} of pid ${pid} is not a directory`, { pid, fd });
  try {
    const real = readlinkSync(link);
    if (isAbsolute(real)) {
      const rs = statSync(real);
      if (rs.dev === st.dev && rs.ino === st.ino) return real;
    }
  } catch {
    // deleted or unreachable under that name: go through the fd
  }
  return link;
}

export function resolveDirs(o: EffectiveOpts, op: Operation, peerPid: number): RequestDirs {
  // CHECK logs to a file only when asked to, and then needs a directory for it (CRIU's rule).
  const wantsDirs = op !== 'check' || (o.log_file !== undefined && o.log_to_stderr !== true);
  if (!wantsDirs) return {};
  let imagesDir: string | undefined;
  if (o.images_dir_fd !== -1) imagesDir = dirOfPeerFd(peerPid, o.images_dir_fd, 'images directory');
  else if (o.images_dir !== undefined && o.images_dir !== '') {
    imagesDir = resolve(o.images_dir);
    if (!existsSync(imagesDir)) throw badOptions(`cannot open images directory ${imagesDir}`, { path: imagesDir });
  } else if (op !== 'check') {
    throw badOptions('neither images_dir_fd nor images_dir was passed by the RPC client');
  }
  const workDir = o.work_dir_fd !== undefined ? dirOfPeerFd(peerPid, o.work_dir_fd, 'work directory') : imagesDir;
  if (workDir === undefined) throw badOptions('images_dir or work_dir_fd is required when using a log file');
  const dirs: RequestDirs = { workDir };
  if (imagesDir !== undefined) dirs.imagesDir = imagesDir;
  if (o.log_file !== undefined && o.log_file.includes('/')) {
    throw badOptions(`no subdirectories are allowed in log_file (${o.log_file})`, { log_file: o.log_file });
  }
  if (o.log_file !== undefined || o.log_to_stderr !== true) dirs.logFile = join(workDir, o.log_file ?? DEFAULT_RPC_LOG_FILE);
  return dirs;
}

const nonEmpty = (v: readonly unknown[] | undefined): boolean => v !== undefined && v.length > 0;

/** Options that would change what is dumped or restored: refused, with their CRIU field names. */
function refused(o: EffectiveOpts, op: Operation): string[] {
  const out: string[] = [];
  const add = (cond: boolean, name: string): void => {
    if (cond) out.push(name);
  };
  // A page server for a dump (or, with lazy_pages, where the dump serves its pages); ps.fd (a socket the client connected) is not taken yet; a restore has no use for one.
  add(o.ps !== undefined && (op !== 'dump' || o.ps.fd !== undefined), o.ps?.fd !== undefined ? 'ps.fd (page server socket)' : 'ps (page server)');
  // lazy_pages: in a RESTORE the lazy-pages daemon's socket in the work dir; in a DUMP, lazy migration (the dump serves its pages on ps's port).
  add(o.lazy_pages === true && op === 'check', 'lazy_pages');
  // Page server connections are not encrypted: a client asking for TLS must not get clear text.
  add(o.tls === true, 'tls');
  add(nonEmpty(o.exec_cmd), 'exec_cmd');
  if (op !== 'restore') add(nonEmpty(o.join_ns), 'join_ns');
  // Property lists other than CRIU's built-in ones would change which cgroup files are saved.
  add(isSet(o.cgroup_props), 'cgroup_props');
  add(isSet(o.cgroup_props_file), 'cgroup_props_file');
  // criu-ts neither reads nor sets LSM labels: another profile asked for would not be put on the tasks.
  add(isSet(o.lsm_profile), 'lsm_profile');
  add(isSet(o.lsm_mount_context), 'lsm_mount_context');
  add(configFileSetsOptions(o.config_file), `config_file (${o.config_file ?? ''} sets options)`);
  if (op !== 'dump') add(o.track_mem === true, 'track_mem');
  return out;
}

/** Accepted, logged as ignored when set: leaving them out does not change what criu-ts can dump or restore. */
const IGNORED_FIELDS = [
  'evasive_devices', 'force_irmap', 'irmap_scan_paths',
  'skip_mnt', 'enable_fs',
  'weak_sysctls', 'tls_cacert', 'tls_cacrl', 'tls_cert',
  'tls_key', 'tls_no_cn_verify', 'mntns_compat_mode', 'skip_file_rwx_check', 'unprivileged',
  'display_stats', 'allow_uprobes', 'ghost_fiemap', 'file_validation_method', 'pidfd_store_sk',
] as const;

function isSet(v: unknown): boolean {
  if (v === undefined || v === false || v === '') return false;
  return !(Array.isArray(v) && v.length === 0);
}

/**
 * CRIU reads config_file after the request and lets it override the RPC
 * settings; a file that is absent (runc always names
 * /etc/criu/runc.conf) or holds only comments changes nothing. One that
 * sets options is refused rather than silently not applied.
 */
function configFileSetsOptions(path: string | undefined): boolean {
  if (path === undefined || path === '') return false;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return false; // CRIU ignores a configuration file it cannot read
  }
  return text.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

/** Refuse what we cannot do, warn about what we skip; throws for the first kind. */
export function checkSupported(o: EffectiveOpts, op: Operation, mode: RpcMode): void {
  if (o.rst_sibling !== undefined && mode === 'service') {
    throw badOptions('rst_sibling is not allowed in the standalone service (use swrk)');
  }
  const no = refused(o, op);
  if (no.length > 0) {
    throw new CriuTsError('EUNSUPPORTED', `criu-ts does not support these RPC options yet: ${no.join(', ')}`, { options: no, errno: EOPNOTSUPP });
  }
  const rec = o as unknown as Record<string, unknown>;
  for (const f of IGNORED_FIELDS) if (isSet(rec[f])) log.warn(`RPC option ${f} is not implemented by criu-ts and is ignored`);
}

function common(o: EffectiveOpts, dirs: RequestDirs): CommonOptions {
  const c: CommonOptions = { progress: false, ghostLimit: o.ghost_limit };
  if (dirs.imagesDir !== undefined) c.imagesDir = dirs.imagesDir;
  if (dirs.workDir !== undefined) c.workDir = dirs.workDir;
  if (o.shell_job !== undefined) c.shellJob = o.shell_job;
  if (o.ext_unix_sk !== undefined) c.extUnixSk = o.ext_unix_sk;
  // CRIU: each inode is an --external unix[INO] (a socket of the tree whose peer outside may have no name);
  // criu-ts also allows every external peer with a name (as the CLI's --ext-unix-sk=ino).
  if (nonEmpty(o.unix_sk_ino)) c.extUnixSk = true;
  if (o.tcp_established !== undefined) c.tcpEstablished = o.tcp_established;
  if (o.tcp_close !== undefined) c.tcpClose = o.tcp_close;
  if (o.tcp_skip_in_flight !== undefined) c.skipInFlight = o.tcp_skip_in_flight;
  // CRIU takes cpu_cap only when sent (has_cpu_cap): the proto's default of all bits would write cpuinfo.img.
  if (o.cpu_cap !== undefined) c.cpuCap = o.cpu_cap;
  // criu_network_lock_method: IPTABLES 1, NFTABLES 2, SKIP 3
  const nl = o.network_lock as unknown;
  if (nl === 'NFTABLES' || nl === 2) c.networkLock = 'nftables';
  else if (nl === 'SKIP' || nl === 3) c.networkLock = 'skip';
  else if (nl === 'IPTABLES' || nl === 1) c.networkLock = 'iptables';
  // empty_ns: CLONE_NEWNET is the only namespace CRIU leaves empty; any other bit is an error there too.
  const empty = o.empty_ns ?? 0;
  if ((empty & ~CLONE_NEWNET) !== 0) throw badOptions(`empty_ns 0x${empty.toString(16)}: only CLONE_NEWNET (0x40000000) can be left empty`, { empty_ns: empty });
  if (empty !== 0) c.emptyNetNs = true;
  // CRIU's --external list: mounts go to the mount kind (as ext_mnt does, runc sends both), the other
  // types are read, or refused, by the API (api/externals.ts).
  const extMounts = (o.ext_mnt ?? []).map((m) => ({ key: m.key, value: m.val }));
  const external: string[] = [];
  // CRIU: auto_ext_mnt, ext_sharing, ext_masters, or "mnt[]:FLAGS" in external.
  if (o.auto_ext_mnt === true) c.autoExtMounts = true;
  if (o.ext_sharing === true) c.extSharing = true;
  if (o.ext_masters === true) c.extMasters = true;
  for (const e of o.external ?? []) {
    const auto = parseAutoExternalMount(e);
    const em = auto === undefined ? parseExternalMount(e) : undefined;
    if (auto !== undefined) {
      c.autoExtMounts = true;
      if (auto.sharing) c.extSharing = true;
      if (auto.masters) c.extMasters = true;
    } else if (em !== undefined) extMounts.push(em);
    else external.push(e);
  }
  for (const u of o.unix_sk_ino ?? []) external.push(`unix[${u.inode}]`);
  if (extMounts.length > 0) c.extMounts = extMounts;
  if (external.length > 0) c.external = external;
  // The "/" of the tree's mount namespace at restore (runc: the container's rootfs); a dump ignores it, as CRIU.
  if (o.root !== undefined && o.root !== '') c.root = o.root;
  if (o.file_locks !== undefined) c.fileLocks = o.file_locks;
  if (o.link_remap !== undefined) c.linkRemap = o.link_remap;
  cgroupRequest(o, c);
  return c;
}

const CG_MODES: Readonly<Record<string, CgroupMode>> = {
  IGNORE: 'ignore', CG_NONE: 'none', PROPS: 'props', SOFT: 'soft', FULL: 'full', STRICT: 'strict', DEFAULT: 'soft',
};
const CG_MODE_NAMES = ['IGNORE', 'CG_NONE', 'PROPS', 'SOFT', 'FULL', 'STRICT', 'DEFAULT'];

/** As CRIU: manage_cgroups true is soft, false ignore; manage_cgroups_mode, read after it, wins. */
function cgroupRequest(o: EffectiveOpts, c: CommonOptions): void {
  if (o.manage_cgroups !== undefined) c.manageCgroups = o.manage_cgroups ? 'soft' : 'ignore';
  const m = o.manage_cgroups_mode as unknown;
  if (m !== undefined) {
    const name = typeof m === 'number' ? CG_MODE_NAMES[m] : String(m);
    const mode = name === undefined ? undefined : CG_MODES[name];
    if (mode === undefined) throw badOptions(`manage_cgroups_mode ${String(m)} is not one of CRIU's modes`);
    c.manageCgroups = mode;
  }
  const roots = (o.cg_root ?? []).map((r) => (r.ctrl !== undefined && r.ctrl !== '' ? `${r.ctrl}:${r.path}` : r.path));
  if (roots.length > 0) c.cgroupRoot = roots;
  if (o.cgroup_yard !== undefined && o.cgroup_yard !== '') c.cgroupYard = o.cgroup_yard;
  if ((o.cgroup_dump_controller ?? []).length > 0) c.cgroupDumpController = o.cgroup_dump_controller;
}

/** DumpOptions; `pid` is the request's or, absent, the client's own (CRIU's self-dump). */
export function dumpOptionsFrom(o: EffectiveOpts, dirs: RequestDirs, peerPid: number): DumpOptions {
  const d: DumpOptions = { ...common(o, dirs), pid: o.pid ?? peerPid };
  if (o.orphan_pts_master === true) d.orphanPtsMaster = true;
  // CRIU: leave_stopped is read after leave_running and wins.
  if (o.leave_running === true) d.leaveRunning = true;
  if (o.leave_stopped === true) {
    d.leaveStopped = true;
    delete d.leaveRunning;
  }
  if (o.freeze_cgroup !== undefined && o.freeze_cgroup !== '') d.freezeCgroup = o.freeze_cgroup;
  if (o.timeout !== undefined) d.timeoutSec = o.timeout;
  if (o.parent_img !== undefined && o.parent_img !== '') d.prevImagesDir = o.parent_img;
  if (o.track_mem === true) d.trackMem = true;
  if (o.lazy_pages === true) {
    // CRIU's lazy migration: ps gives the port the dump serves its pages on (CRIU listens on every address; we on
    // ps.address when it is set), status_fd (an fd of this process, as CRIU's) gets a byte once it listens.
    const statusFd = o.status_fd !== undefined && o.status_fd >= 0 ? o.status_fd : undefined;
    d.lazyPages = {
      address: o.ps?.address !== undefined && o.ps.address !== '' ? o.ps.address : '0.0.0.0', port: o.ps?.port ?? 0,
      ...(statusFd !== undefined ? { onListening: () => signalReady(statusFd) } : {}),
    };
  } else if (o.ps !== undefined) {
    // CRIU: ps sends the pages to a page server at ps.address (the local host when unset) and ps.port.
    d.pageServer = { address: o.ps.address !== undefined && o.ps.address !== '' ? o.ps.address : '127.0.0.1', port: o.ps.port ?? 0 };
  }
  // pre_dump_mode (SPLICE or VM_READ) is taken and changes nothing: criu-ts's pre-dump always reads the running tasks (docs/incremental.md).
  return d;
}

/** RestoreOptions: always detached, like CRIU's restore_using_req (the client gets the pid and goes on). */
export function restoreOptionsFrom(o: EffectiveOpts, dirs: RequestDirs): RestoreOptions {
  const r: RestoreOptions = { ...common(o, dirs) };
  // rst_sibling: the root is born the client's child (swrk is the client's child; the service refuses it above).
  if (o.rst_sibling === true) r.restoreSibling = true;
  if (o.leave_stopped === true) r.leaveStopped = true;
  if (o.lazy_pages === true) r.lazyPages = true;
  // veths: CRIU's --veth-pair, if_out being OUT[@BRIDGE].
  const veths = o.veths ?? [];
  if (veths.length > 0) {
    r.vethPairs = veths.map((v) => {
      const at = v.if_out.indexOf('@');
      return at < 0 ? { inside: v.if_in, outside: v.if_out } : { inside: v.if_in, outside: v.if_out.slice(0, at), bridge: v.if_out.slice(at + 1) };
    });
  }
  const joins = o.join_ns ?? [];
  if (joins.length > 0) {
    r.joinNs = joins.map((j) => (j.extra_opt !== undefined && j.extra_opt !== '' ? { ns: j.ns, file: j.ns_file, extra: j.extra_opt } : { ns: j.ns, file: j.ns_file }));
  }
  // The fds are this process's own (runc passes them to `criu swrk` as extra files), as in CRIU.
  if (nonEmpty(o.inherit_fd)) r.inheritFd = (o.inherit_fd ?? []).map((i) => ({ fd: i.fd, key: i.key }));
  return r;
}
