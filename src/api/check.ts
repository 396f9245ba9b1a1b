/**
 * What this kernel offers criu-ts, with CRIU's feature names (`criu check
 * --feature list`) plus our own: each answer comes from a real probe (a
 * syscall, an ioctl, a /proc file), or, where a probe would need more than
 * we can do cheaply, from the kernel's own config (/proc/config.gz) with the
 * reason saying so.
 *
 * @example
 *   const r = await check({});            // r.ok: dump and restore can work here
 *   const all = await check({ extra: true, experimental: true });
 *   const f = await check({ feature: 'clone3_set_tid' });
 *   f.features['clone3_set_tid']?.ok;
 */
import { existsSync, openSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as probe from '../sys/probe.js';
import type { ProbeResult, TraceeProbe } from '../sys/probe.js';
import { CriuTsError } from '../errors.js';
import { startOwnSleep } from '../infect/helper-task.js';
import { PagemapReader, parseMaps, parseStatus, readFdinfoText, readFilesystems, readKernelConfig } from '../proc/index.js';
import type { CheckOptions, CheckResult } from './options.js';
import { UFFD_FEATURE_PAGEFAULT_FLAG_WP, UFFD_FEATURE_WP_ASYNC } from '../sys/index.js';

/** What a dump and a restore cannot do without: `criu-ts check` says "Looks good." when all are there. */
export const BASIC_FEATURES = ['ptrace_seize', 'process_vm_readv', 'pidfd_getfd', 'clone3_set_tid', 'pagemap'] as const;

/** CRIU's category 3 ("--experimental"). */
export const EXPERIMENTAL_FEATURES = ['autofs', 'compat_cr'] as const;

/** CRIU's feature names, in CRIU's order, then the ones criu-ts adds. */
export const CRIU_FEATURE_NAMES = [
  'mnt_id', 'mem_dirty_track', 'aio_remap', 'timerfd', 'tun', 'tun_ns', 'userns', 'fdinfo_lock',
  'seccomp_suspend', 'seccomp_filters', 'loginuid', 'cgroupns', 'autofs', 'tcp_half_closed', 'compat_cr',
  'uffd', 'uffd-noncoop', 'can_map_vdso', 'sk_ns', 'sk_unix_file', 'net_diag_raw', 'nsid', 'link_nsid',
  'kcmp_epoll', 'timens', 'external_net_ns', 'clone3_set_tid', 'newifindex', 'nftables', 'has_ipt_legacy',
  'pidfd_store', 'ns_pid', 'apparmor_stacking', 'network_lock_nftables', 'sockopt_buf_lock', 'memfd_hugetlb',
  'move_mount_set_group', 'openat2', 'get_rseq_conf', 'ns_get_userns', 'ns_get_parent', 'ipv6_freebind',
  'pagemap_scan_guard_pages',
] as const;

const OWN_FEATURE_NAMES = ['ptrace_seize', 'process_vm_readv', 'pidfd_getfd', 'pagemap', 'pagemap_scan', 'uffd_wp_async'] as const;

export const FEATURE_NAMES: readonly string[] = [...CRIU_FEATURE_NAMES, ...OWN_FEATURE_NAMES];

/** CRIU's category 2 ("--extra"): everything that is neither basic nor experimental. */
export const EXTRA_FEATURES: readonly string[] = FEATURE_NAMES.filter(
  (n) => !(BASIC_FEATURES as readonly string[]).includes(n) && !(EXPERIMENTAL_FEATURES as readonly string[]).includes(n),
);

// userfaultfd feature bits (include/uapi/linux/userfaultfd.h)
const UFFD_NONCOOP_EVENTS = (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 6n); // FORK, REMAP, REMOVE, UNMAP

/** Lazily computed facts shared by several probes during one check() call. */
class Facts {
  /** The kinds' own probes: the registry is imported only when a feature asks for one (below). */
  constructor(readonly kindProbes: ReadonlyMap<string, () => { ok: boolean; why?: string }> = new Map()) {}

  private tracee: TraceeProbe | undefined;
  private config: Map<string, string> | undefined;
  private uffd: ReturnType<typeof probe.uffdFeatures> | undefined;
  private readonly asked = new Map<() => { ok: boolean; why?: string }, { ok: boolean; why?: string }>();

  traced(): TraceeProbe {
    this.tracee ??= probeThrowawayChild();
    return this.tracee;
  }

  /** A kind's probe, run once per check() (several features may ask the same one) */
  once(p: () => { ok: boolean; why?: string }): { ok: boolean; why?: string } {
    let r = this.asked.get(p);
    if (r === undefined) this.asked.set(p, (r = p()));
    return r;
  }

  uffdFeatures(): ReturnType<typeof probe.uffdFeatures> {
    this.uffd ??= probe.uffdFeatures();
    return this.uffd;
  }

  /** CONFIG_X from /proc/config.gz: 'y', 'm', or undefined when not set (or no config is exposed). */
  kconfig(name: string): string | undefined {
    if (this.config === undefined) {
      this.config = new Map();
      try {
        this.config = readKernelConfig();
      } catch {
        // an unreadable /proc/config.gz: config-based answers say "unknown"
      }
    }
    return this.config.get(`CONFIG_${name}`);
  }
}

function probeThrowawayChild(): TraceeProbe {
  // A sleep of ours, past its exec: the address probed is one of the program's own mappings.
  const own = startOwnSleep('check: probe child', 'EINTERNAL', 60);
  const pid = own.pid;
  let start: bigint;
  try {
    start = parseMaps(pid).find((m) => m.prot.read)?.start ?? 0n;
  } catch (e) {
    own.kill();
    throw e;
  }
  try {
    return probe.probeTracee(pid, start); // kills the child itself
  } finally {
    own.kill(); // and collects it (it is let go by then)
  }
}

const ok: ProbeResult = { ok: true };
const no = (reason: string): ProbeResult => ({ ok: false, reason });
const fileExists = (path: string, why: string): ProbeResult => (existsSync(path) ? ok : no(`${path} missing (${why})`));

function kconfigProbe(f: Facts, name: string): ProbeResult {
  const v = f.kconfig(name);
  if (v === 'y' || v === 'm') return ok;
  return no(v === undefined ? `CONFIG_${name} is not set (from /proc/config.gz)` : `CONFIG_${name}=${v}`);
}

function fdinfoOf(fd: number): string {
  return readFdinfoText(process.pid, fd);
}

function withTempFile<T>(fn: (fd: number) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-check-'));
  const fd = openSync(join(dir, 'probe'), 'w+');
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

function pagemapReadable(): ProbeResult {
  // Opened and read (page 0, below any address limit): a kernel or an LSM that refuses either throws here.
  const reader = new PagemapReader(process.pid);
  try {
    reader.read(0n, 4096n);
    return ok;
  } finally {
    reader.close();
  }
}

const notOurs = (what: string): ProbeResult => no(`criu-ts does not ${what} yet`);

type Prober = (f: Facts) => ProbeResult;

const PROBES: Record<string, Prober> = {
  ptrace_seize: (f) => f.traced().seize,
  process_vm_readv: (f) => f.traced().processVmReadv,
  pidfd_getfd: (f) => f.traced().pidfdGetfd,
  clone3_set_tid: () => probe.probeClone3SetTid(),
  pagemap: () => pagemapReadable(),
  pagemap_scan: () => probe.probePagemapScan(),
  // Guard regions (MADV_GUARD_INSTALL) are found with PAGEMAP_SCAN; without it a dump cannot see them.
  pagemap_scan_guard_pages: () => probe.probePagemapScanGuard(),
  // Either tracker serves pre-dump: soft-dirty where the kernel has it, or
  // an async write-protect userfaultfd read back with PAGEMAP_SCAN.
  mem_dirty_track: () => {
    const sd = probe.probeSoftDirty();
    if (sd.ok) return sd;
    const wp = probe.probeUffdWpTracking();
    return wp.ok ? wp : no(`${sd.reason ?? 'no soft-dirty'}; ${wp.reason ?? 'no userfaultfd write-protect tracking'}`);
  },
  uffd: (f) => {
    const u = f.uffdFeatures();
    return 'features' in u ? ok : no(u.error);
  },
  'uffd-noncoop': (f) => {
    const u = f.uffdFeatures();
    if (!('features' in u)) return no(u.error);
    return (u.features & UFFD_NONCOOP_EVENTS) === UFFD_NONCOOP_EVENTS ? ok : no('userfaultfd lacks fork/remap/remove/unmap events');
  },
  uffd_wp_async: (f) => {
    const u = f.uffdFeatures();
    if (!('features' in u)) return no(u.error);
    const want = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_WP_ASYNC;
    return (u.features & want) === want ? ok : no('userfaultfd lacks UFFD_FEATURE_WP_ASYNC');
  },
  mnt_id: () => (fdinfoOf(0).includes('mnt_id:') || fdinfoOf(1).includes('mnt_id:') ? ok : no('fdinfo has no mnt_id')),
  aio_remap: (f) => kconfigProbe(f, 'AIO'),
  timerfd: () => probe.probeTimerfd(fdinfoOf),
  tun: (f) => (existsSync('/dev/net/tun') ? kconfigProbe(f, 'TUN') : no('/dev/net/tun missing')),
  tun_ns: (f) => (existsSync('/dev/net/tun') ? kconfigProbe(f, 'TUN') : no('/dev/net/tun missing')),
  userns: () => {
    const ns = fileExists('/proc/self/ns/user', 'CONFIG_USER_NS');
    return ns.ok ? probe.probePrSetMmMapSize() : ns;
  },
  fdinfo_lock: () => withTempFile((fd) => probe.probeFdinfoLock(fd, fdinfoOf)),
  seccomp_suspend: (f) => f.traced().suspendSeccomp,
  seccomp_filters: () => fileExists('/proc/sys/kernel/seccomp/actions_avail', 'CONFIG_SECCOMP_FILTER'),
  loginuid: () => fileExists('/proc/self/loginuid', 'CONFIG_AUDITSYSCALL'),
  cgroupns: () => fileExists('/proc/self/ns/cgroup', 'CONFIG_CGROUPS namespaces'),
  autofs: (f) => (readFilesystems().includes('autofs') ? ok : kconfigProbe(f, 'AUTOFS_FS')),
  tcp_half_closed: () => probe.probeTcpRepairWindow(),
  compat_cr: (f) => kconfigProbe(f, 'IA32_EMULATION'),
  can_map_vdso: (f) => kconfigProbe(f, 'CHECKPOINT_RESTORE'),
  sk_ns: () => probe.probeSkNs(),
  sk_unix_file: () => probe.probeUnixFile(),
  // Raw sockets are dumped from /proc/PID/net/raw{,6} (raw sock_diag lists nothing on some kernels).
  net_diag_raw: () => {
    const v4 = fileExists('/proc/self/net/raw', 'raw sockets are read from it');
    return v4.ok ? fileExists('/proc/self/net/raw6', 'raw IPv6 sockets are read from it') : v4;
  },
  nsid: (f) => kconfigProbe(f, 'NET_NS'),
  link_nsid: (f) => kconfigProbe(f, 'NET_NS'),
  kcmp_epoll: () => probe.probeKcmpEpoll(),
  timens: () => fileExists('/proc/self/ns/time', 'CONFIG_TIME_NS'),
  // --external net[INODE]:KEY at dump, the namespace handed back with --inherit-fd at restore (kinds/ns/net.ts).
  external_net_ns: () => fileExists('/proc/self/ns/net', 'CONFIG_NET_NS'),
  newifindex: (f) => kconfigProbe(f, 'NET_NS'),
  pidfd_store: (f) => {
    const open = probe.probePidfdOpen();
    return open.ok ? f.traced().pidfdGetfd : open;
  },
  ns_pid: () => (parseStatus(process.pid).nsPid.length > 0 ? ok : no('/proc/PID/status has no NSpid')),
  apparmor_stacking: () => fileExists('/sys/kernel/security/apparmor/features/domain/stack', 'AppArmor stacking'),
  sockopt_buf_lock: () => probe.probeSockoptBufLock(),
  memfd_hugetlb: () => probe.probeMemfdHugetlb(),
  move_mount_set_group: () => probe.probeMoveMountSetGroup(),
  openat2: () => probe.probeOpenat2(),
  get_rseq_conf: (f) => f.traced().rseqConfig,
  ns_get_userns: () => probe.probeNsIoctl('/proc/self/ns/net', 0xb701, 'NS_GET_USERNS'),
  ns_get_parent: () => probe.probeNsIoctl('/proc/self/ns/pid', 0xb702, 'NS_GET_PARENT'),
  ipv6_freebind: () => probe.probeIpv6Freebind(),
};

/**
 * Features the kernel may have but criu-ts cannot use yet: answering "no"
 * (after the kernel's own answer, when that is already no) lets callers
 * such as CRIU's test suite skip what would only fail. None today: uffd
 * and uffd-noncoop answer the kernel's word (criu-ts serves lazy pages), and
 * userns too (criu-ts restores user namespaces).
 */
const NOT_IN_CRIU_TS: Readonly<Record<string, string>> = {
};

/** What the kinds need of the host, probed by the kinds themselves (ResourceKind.probes: the network lock's nftables, legacy iptables). */
function kindProber(name: string, facts: Facts): Prober | undefined {
  const p = facts.kindProbes.get(name);
  return p && ((f) => {
    const r = f.once(p);
    return r.ok ? ok : no(r.why ?? `${name}: does not work here`);
  });
}

/**
 * The kinds' registry (kinds/index.ts) is imported only when a feature
 * without a probe of its own here is asked for: evaluating it (every
 * kind's module, the images' schemas) was 8-10 ms of a plain `check`'s
 * CPU, whose five basic features need none of it (docs/performance.md,
 * "Start-up, session 14").
 */
async function factsFor(names: readonly string[]): Promise<Facts> {
  if (names.every((n) => PROBES[n] !== undefined)) return new Facts();
  return new Facts((await import('../kinds/index.js')).kindProbes());
}

function run(name: string, facts: Facts): ProbeResult {
  const p = PROBES[name] ?? kindProber(name, facts);
  if (p === undefined) return no('no probe for this feature');
  try {
    const r = p(facts);
    const lacking = NOT_IN_CRIU_TS[name];
    if (r.ok && lacking !== undefined) return no(lacking);
    return r.reason === undefined ? { ok: r.ok } : { ok: r.ok, reason: r.reason };
  } catch (e) {
    return no(e instanceof Error ? e.message : String(e));
  }
}

/**
 * Probe the kernel. With `feature`, only that one (an unknown name is an
 * EUSAGE error); `ok` is then that feature's answer. Without, the
 * BASIC_FEATURES (as CRIU's plain `check`), plus EXTRA_FEATURES with
 * `extra` and EXPERIMENTAL_FEATURES with `experimental`; `ok` says whether
 * all of BASIC_FEATURES are there. (Probing every feature costs a few
 * programs run, nft and iptables-legacy among them: 50-100 ms.)
 */
export async function check(opts: CheckOptions): Promise<CheckResult> {
  const features: CheckResult['features'] = {};
  if (opts.feature !== undefined) {
    if (!FEATURE_NAMES.includes(opts.feature)) {
      throw new CriuTsError('EUSAGE', `unknown feature ${opts.feature}`, { feature: opts.feature });
    }
    const r = run(opts.feature, await factsFor([opts.feature]));
    features[opts.feature] = r;
    return { ok: r.ok, features };
  }
  const wanted = [...BASIC_FEATURES, ...(opts.extra === true ? EXTRA_FEATURES : []), ...(opts.experimental === true ? EXPERIMENTAL_FEATURES : [])];
  const facts = await factsFor(wanted);
  for (const name of FEATURE_NAMES) if (wanted.includes(name)) features[name] = run(name, facts);
  return { ok: BASIC_FEATURES.every((n) => features[n]?.ok === true), features };
}
