/**
 * The cgroup properties saved per directory, as CRIU 4.2 saves them (its
 * built-in list per controller, criu/cgroup-props.c), read and written
 * back. `tasks` and `cgroup.procs` are saved for their permissions only.
 * A property missing on this kernel is left out, as in CRIU.
 */
import { closeSync, fchmodSync, fchownSync, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupPropEntry } from '../../images/messages.js';
import { CriuTsError } from '../../errors.js';

/** Properties per v1 controller (CRIU's built-in list, in its order: memory.limit_in_bytes before memsw). */
const CONTROLLER_PROPS: Readonly<Record<string, readonly string[]>> = {
  cpu: ['cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'cpu.rt_period_us', 'cpu.rt_runtime_us'],
  memory: [
    'memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.swappiness', 'memory.soft_limit_in_bytes',
    'memory.move_charge_at_immigrate', 'memory.oom_control', 'memory.use_hierarchy', 'memory.kmem.limit_in_bytes',
    'memory.kmem.tcp.limit_in_bytes',
  ],
  cpuset: [
    'cpuset.cpus', 'cpuset.mems', 'cpuset.memory_migrate', 'cpuset.cpu_exclusive', 'cpuset.mem_exclusive',
    'cpuset.mem_hardwall', 'cpuset.memory_spread_page', 'cpuset.memory_spread_slab', 'cpuset.sched_load_balance',
    'cpuset.sched_relax_domain_level',
  ],
  blkio: ['blkio.weight'],
  freezer: [],
  perf_event: [],
  net_cls: ['net_cls.classid'],
  net_prio: ['net_prio.ifpriomap'],
  pids: ['pids.max'],
  devices: ['devices.list'],
};

const GLOBAL_V1 = ['cgroup.clone_children', 'notify_on_release', 'cgroup.procs', 'tasks'];
const GLOBAL_V2 = ['cgroup.subtree_control', 'cgroup.max.descendants', 'cgroup.max.depth', 'cgroup.freeze', 'cgroup.type'];

/**
 * Properties that cannot be set once the cgroup has tasks or children: set
 * right after the directory is made (CRIU's "special" properties).
 */
export const SPECIAL_PROPS: ReadonlySet<string> = new Set([
  'cpuset.cpus', 'cpuset.mems', 'devices.list', 'memory.kmem.limit_in_bytes', 'memory.swappiness',
  'memory.oom_control', 'memory.use_hierarchy', 'cgroup.type',
]);

/** Saved for their permissions; their values (the member pids) are never written back. */
const MEMBER_LISTS: ReadonlySet<string> = new Set(['cgroup.procs', 'tasks']);

/** The property names saved for a directory of the hierarchy with controllers `cnames`. */
export function propNames(cnames: readonly string[]): string[] {
  const own = cnames.flatMap((c) => CONTROLLER_PROPS[c] ?? []);
  return [...own, ...(cnames.length === 1 && cnames[0] === '' ? GLOBAL_V2 : GLOBAL_V1)];
}

const LLONG_MAX = 9223372036854775807n;

/** Read property `name` of cgroup directory `dir`, or undefined when this kernel has none. */
export function readProp(dir: string, name: string): CgroupPropEntry | undefined {
  const file = join(dir, name);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CriuTsError('EDUMP', `cgroup property ${file}: ${(e as Error).message}`, { file }, e);
  }
  try {
    const st = fstatSync(fd);
    const perms = { mode: st.mode, uid: st.uid, gid: st.gid };
    if (MEMBER_LISTS.has(name)) return { name, value: '', perms };
    // As CRIU: the first 1023 bytes, the trailing newline stripped.
    const buf = Buffer.alloc(1023);
    const n = readSync(fd, buf, 0, buf.length, null);
    let value = buf.subarray(0, n).toString('utf8').replace(/\n$/, '');
    // An "unlimited" that saturates a long long is written back as -1 (what the kernel reads as unlimited).
    const m = /^\s*(\d+)/.exec(value);
    if (m && BigInt(m[1] as string) >= LLONG_MAX) value = '-1';
    if (name === 'memory.oom_control') {
      const d = /^oom_kill_disable (\d+)/.exec(value);
      if (!d) throw new CriuTsError('EDUMP', `cgroup property ${file}: unexpected "${value}"`, { file });
      value = d[1] as string;
    }
    return { name, value, perms };
  } finally {
    closeSync(fd);
  }
}

/** The directory's own mode and owner (cgroup_perms). */
export function dirPerms(dir: string): { mode: number; uid: number; gid: number } {
  const st = statSync(dir);
  return { mode: st.mode, uid: st.uid, gid: st.gid };
}

/** Write one property back (with its permissions); lines one write each where the kernel takes one line per write. */
export function writeProp(dir: string, p: CgroupPropEntry): void {
  const file = join(dir, p.name);
  const subtree = p.name === 'cgroup.subtree_control';
  let fd: number;
  try {
    fd = openSync(file, subtree ? 'r+' : 'w');
  } catch (e) {
    throw new CriuTsError('ERESTORE', `cgroup property ${file}: ${(e as Error).message}`, { file }, e);
  }
  try {
    if (p.perms) {
      fchownSync(fd, p.perms.uid, p.perms.gid);
      fchmodSync(fd, p.perms.mode & 0o7777);
    }
    if (MEMBER_LISTS.has(p.name)) return;
    // Only a threaded cgroup.type is ever written ("domain" is the default, the others are states).
    if (p.name === 'cgroup.type' && p.value !== 'threaded') return;
    const lines = subtree
      ? p.value.split(/\s+/).filter((c) => c !== '').map((c) => `+${c}`)
      : p.name === 'net_prio.ifpriomap' || p.name === 'devices.allow'
        ? p.value.split('\n').filter((l) => l !== '')
        : [p.value];
    for (const line of lines) {
      try {
        writeSync(fd, line);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // memory.kmem.limit_in_bytes is gone from recent kernels (EOPNOTSUPP), as CRIU accepts.
        if (code === 'EOPNOTSUPP' && p.name === 'memory.kmem.limit_in_bytes') continue;
        throw new CriuTsError('ERESTORE', `cgroup property ${file}: writing "${line}": ${(e as Error).message}`, { file }, e);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Write a property the way its kernel file takes it: devices.list as a
 * deny-all then its lines allowed one by one; an ifpriomap only for the
 * non-zero priorities (the interfaces differ from host to host); the
 * defaults of memory.swappiness and oom_control left alone.
 */
export function restoreProp(dir: string, p: CgroupPropEntry): void {
  if (p.name === 'devices.list') {
    writeProp(dir, { name: 'devices.deny', value: 'a', perms: p.perms ? { ...p.perms, mode: 0o200 } : undefined });
    if (p.value !== '') writeProp(dir, { name: 'devices.allow', value: p.value, perms: p.perms ? { ...p.perms, mode: 0o200 } : undefined });
    return;
  }
  if (p.name === 'net_prio.ifpriomap') {
    const lines = p.value.split('\n').filter((l) => /\s(\d+)$/.exec(l) !== null && !/\s0+$/.test(l));
    if (lines.length > 0) writeProp(dir, { ...p, value: lines.join('\n') });
    return;
  }
  if (p.name === 'memory.swappiness' && p.value === '60') return;
  if (p.name === 'memory.oom_control' && p.value === '0') return;
  writeProp(dir, p);
}
