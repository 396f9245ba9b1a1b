/** /proc/PID/mountinfo: the mount tree as the task sees it. */
import { lines, parseError, readProcText } from './read.js';

export interface MountInfo {
  mntId: number;
  parentId: number;
  devMajor: number;
  devMinor: number;
  /** Root of the mount inside its filesystem. */
  root: string;
  mountpoint: string;
  /** Per-mount options (rw, nosuid, relatime ...). */
  options: string;
  /** Peer group this mount is shared in (shared:N), 0 if not shared. */
  shared: number;
  /** Peer group this mount receives from (master:N), 0 if none. */
  master: number;
  propagateFrom: number;
  unbindable: boolean;
  /** The optional fields exactly as printed. */
  optional: string[];
  fstype: string;
  source: string;
  superOptions: string;
}

/** The kernel escapes space, tab, newline and backslash as \ooo octal. */
export function decodeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfoLine(line: string, file: string): MountInfo {
  const f = line.split(' ');
  const dash = f.indexOf('-', 6);
  if (f.length < 10 || dash < 0 || f.length < dash + 4) throw parseError(file, line, 'bad mountinfo line');
  const dev = /^([0-9]+):([0-9]+)$/.exec(f[2] ?? '');
  if (dev === null) throw parseError(file, line, 'bad major:minor');
  const optional = f.slice(6, dash);
  const info: MountInfo = {
    mntId: Number(f[0]), parentId: Number(f[1]), devMajor: Number(dev[1]), devMinor: Number(dev[2]),
    root: decodeMountPath(f[3] ?? ''), mountpoint: decodeMountPath(f[4] ?? ''), options: f[5] ?? '',
    shared: 0, master: 0, propagateFrom: 0, unbindable: false, optional,
    fstype: decodeMountPath(f[dash + 1] ?? ''), source: decodeMountPath(f[dash + 2] ?? ''),
    superOptions: f.slice(dash + 3).join(' '),
  };
  for (const o of optional) {
    const [k, v] = o.split(':');
    if (k === 'shared') info.shared = Number(v);
    else if (k === 'master') info.master = Number(v);
    else if (k === 'propagate_from') info.propagateFrom = Number(v);
    else if (k === 'unbindable') info.unbindable = true;
  }
  if (!Number.isInteger(info.mntId) || !Number.isInteger(info.parentId)) throw parseError(file, line, 'bad ids');
  return info;
}

export function parseMountinfo(pid: number): MountInfo[] {
  const file = `/proc/${pid}/mountinfo`;
  return lines(readProcText(pid, file)).map((l) => parseMountinfoLine(l, file));
}
