/**
 * What a task's /proc/PID/task/TID/cgroup says, in CRIU's terms: one member
 * (hierarchy name, path) per line, a set of members per distinct list, and
 * the hierarchies ("controllers" in cgroup.img) those names belong to.
 *
 * A hierarchy name is the middle field of the line: "cpu,cpuacct" for a v1
 * hierarchy with those controllers, "name=systemd" for a named v1 one, ""
 * for the v2 hierarchy.
 */
import { CriuTsError } from '../../errors.js';
import { readThreadCgroupText as readText } from '../../proc/index.js';

export interface CgMember {
  /** hierarchy name as /proc shows it ("cpu,cpuacct", "name=zdtmtst", "" for v2) */
  name: string;
  /** path from the hierarchy's root as we see it ("/", "/a/b") */
  path: string;
  /** for a task in a cgroup namespace: length of the part of `path` above its namespace root */
  cgnsPrefix?: number;
}

/** Parse a cgroup file's text; members sorted by name (CRIU's order, strcmp). */
export function parseCgroupText(text: string, what: string): CgMember[] {
  const out: CgMember[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) throw new CriuTsError('EPROC', `${what}: cannot parse "${line}"`, { what });
    out.push({ name: line.slice(a + 1, b), path: line.slice(b + 1) });
  }
  return out.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}

/** The text of thread `tid` of `pid`'s cgroup file (proc/misc.ts). */
export function readThreadCgroupText(pid: number, tid: number): string {
  try {
    return readText(pid, tid);
  } catch (e) {
    throw new CriuTsError('ENOTASK', `task ${pid}: cannot read its thread ${tid}'s cgroup file: ${(e as Error).message}`, { pid, tid }, e);
  }
}

/** The cgroups of thread `tid` of `pid` as we see them (paths from our own cgroup namespace's roots). */
export function readThreadCgroups(pid: number, tid: number): CgMember[] {
  return parseCgroupText(readThreadCgroupText(pid, tid), `/proc/${pid}/task/${tid}/cgroup`);
}

export function sameMembers(a: readonly CgMember[], b: readonly CgMember[]): boolean {
  return a.length === b.length && a.every((m, i) => {
    const o = b[i];
    return o !== undefined && m.name === o.name && m.path === o.path && (m.cgnsPrefix ?? 0) === (o.cgnsPrefix ?? 0);
  });
}

/**
 * Whether a hierarchy with controllers `cnames` is the one /proc calls
 * `name` (every controller of it appears in the comma list; v2 is "").
 */
export function hierarchyMatches(cnames: readonly string[], name: string): boolean {
  if (cnames.length === 1 && cnames[0] === '') return name === '';
  if (cnames.length === 0) return false;
  const parts = name.split(',');
  return cnames.every((c) => parts.includes(c));
}

/** The hierarchy's directory name in a cgroup yard (CRIU's): controllers joined by ",", "name=" dropped, v2 as "unified". */
export function yardDirName(cnames: readonly string[]): string {
  return cnames.map((c) => (c.startsWith('name=') ? c.slice(5) : c === '' ? 'unified' : c)).join(',');
}

/** The hierarchy's controllers as /proc names it ("cpu,cpuacct" -> ["cpu", "cpuacct"]; v2 -> [""]). */
export function cnamesOf(name: string): string[] {
  return name === '' ? [''] : name.split(',');
}

/** Is `path` `dir` itself or below it ("/a/b" is below "/a", "/ab" is not; everything is below "/")? */
export function isSubpath(path: string, dir: string): boolean {
  if (dir === '/') return path.startsWith('/');
  return path === dir || path.startsWith(`${dir}/`);
}
