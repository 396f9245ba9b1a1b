/**
 * What a dump or restore could leave in the system the tests run in, as
 * lines to compare before and after: the mounts of our mount namespace,
 * our network devices, nft tables, cgroup directories, and the files below
 * a directory. Other helpers' tests run on this machine at the same time,
 * so a device, table, cgroup or network-lock marker counts only if the
 * dump's images name it, and a mount only if it is under one of the test's
 * dirs (zdtm and the namespace tests mount and unmount in ours all the time).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { readImage } from '../../src/images/index.js';

/** Every path below dir (a file left by a restore anywhere in it shows). */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const go = (d: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(d, { withFileTypes: true }).map((e) => (e.isDirectory() && !e.isSymbolicLink() ? `${e.name}/` : e.name));
    } catch {
      return;
    }
    for (const n of names.sort()) {
      out.push(rel + n);
      if (n.endsWith('/')) go(join(d, n), rel + n);
    }
  };
  go(dir, '');
  return out;
}

/** Every string of every image of a dump: device, table, cgroup names we may look for after a case. */
export function namesIn(dir: string, file: RegExp): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.add(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) Object.values(v).forEach(walk);
  };
  for (const f of readdirSync(dir).filter((n) => file.test(n))) {
    try {
      walk(readImage(join(dir, f)).entries);
    } catch {
      // damaged beyond reading: its names are the original's
    }
  }
  return out;
}

const nftTables = (): string[] => {
  const r = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n').filter((l) => l !== '') : [];
};

/** Every cgroup directory on the machine, by path (v2 and each v1 hierarchy). */
function cgroupDirs(): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const fstype = f[f.indexOf('-') + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const mp = f[4] ?? '';
    for (const p of tree(mp)) if (p.endsWith('/')) out.add(join(mp, p));
  }
  return out;
}

/** What a case could leave in our world, as a set of lines to compare. */
export interface World {
  mounts: string[];
  links: string[];
  tables: string[];
  cgroups: Set<string>;
  markers: string[];
}

/** A dump's network-lock markers (src/kinds/files/inet-socket/net-lock-marker.ts), by run id. */
const markers = (): string[] => {
  try {
    return readdirSync('/run/criu-ts/net-lock').sort();
  } catch {
    return [];
  }
};
export const world = (): World => ({
  mounts: readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n'),
  links: readdirSync('/sys/class/net').sort(),
  tables: nftTables(),
  cgroups: cgroupDirs(),
  markers: markers(),
});

/**
 * What changed in our world that this dump could have made (other helpers'
 * tests run on this machine too: a device, table or cgroup counts only if
 * the images name it; a mount if its line names one of our dirs, as its
 * mount point or its root).
 */
export function leftovers(before: World, ours: { dirs: string[]; names: Set<string> }): string[] {
  const now = world();
  const out: string[] = [];
  const mine = (line: string): boolean => ours.dirs.some((d) => line.includes(d));
  for (const m of now.mounts) if (!before.mounts.includes(m) && mine(m)) out.push(`mount ${m}`);
  for (const m of before.mounts) if (!now.mounts.includes(m) && mine(m)) out.push(`mount gone: ${m}`);
  for (const l of now.links) if (!before.links.includes(l) && ours.names.has(l)) out.push(`net device ${l}`);
  for (const t of now.tables) if (!before.tables.includes(t) && [...ours.names].some((n) => n.length >= 8 && t.includes(n))) out.push(`nft ${t}`);
  for (const m of now.markers) if (!before.markers.includes(m) && ours.names.has(m)) out.push(`network-lock marker ${m}`);
  for (const c of now.cgroups) {
    const base = c.replace(/\/$/, '').split('/').pop() ?? '';
    if (!before.cgroups.has(c) && ours.names.has(base)) out.push(`cgroup ${c}`);
  }
  return out;
}

