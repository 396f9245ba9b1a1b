/**
 * Reaching a cgroup hierarchy by path from our side. Without --cgroup-yard,
 * each hierarchy is opened as a detached mount (fsopen/fsmount: mounted
 * nowhere, so the machine's mount table never changes and nothing is left
 * behind) and reached as /proc/self/fd/N. With --cgroup-yard DIR, DIR holds
 * one mount per hierarchy, named as CRIU names them (yardDirName: "cpu,cpuacct",
 * "zdtmtst" for name=zdtmtst, "unified" for v2), made by the caller, e.g.
 * when we could not mount cgroups ourselves.
 */
import { closeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { detachedMount } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import { yardDirName } from './model.js';

export class Hierarchies {
  private readonly fds = new Map<string, number>();
  private readonly bases = new Map<string, string>();

  constructor(private readonly yard: string | undefined) {}

  /** The path of the root of the hierarchy with controllers `cnames` ("name=x" for a named one, "" for v2). */
  root(cnames: readonly string[]): string {
    const key = cnames.join(',');
    const known = this.bases.get(key);
    if (known !== undefined) return known;
    let base: string;
    if (this.yard !== undefined) {
      base = join(this.yard, yardDirName(cnames));
      if (!existsSync(join(base, 'cgroup.procs'))) {
        throw new CriuTsError('EUSAGE', `--cgroup-yard ${this.yard}: no cgroup hierarchy ${key || 'v2'} mounted at ${base}`, { yard: this.yard, base });
      }
    } else {
      let fd: number;
      try {
        if (cnames.length === 1 && cnames[0] === '') fd = detachedMount('cgroup2', {}, []);
        else {
          const named = cnames.find((c) => c.startsWith('name='));
          const strings: Record<string, string> = named ? { name: named.slice(5) } : {};
          fd = detachedMount('cgroup', strings, cnames.filter((c) => !c.startsWith('name=')));
        }
      } catch (e) {
        throw new CriuTsError('ESYSCALL', `cannot open the cgroup hierarchy ${key || 'v2'}: ${(e as Error).message} (--cgroup-yard gives mounts made beforehand; at dump, --manage-cgroups=ignore saves the memberships only)`, { hierarchy: key }, e);
      }
      this.fds.set(key, fd);
      base = `/proc/self/fd/${fd}`;
    }
    this.bases.set(key, base);
    return base;
  }

  /** The path of cgroup `path` ("/a/b") in that hierarchy. */
  dir(cnames: readonly string[], path: string): string {
    const r = this.root(cnames);
    return path === '/' || path === '' ? r : join(r, path);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.bases.clear();
  }
}
