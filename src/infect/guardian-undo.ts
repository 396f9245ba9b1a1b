/**
 * The guardian's part for what a dump sets up outside the tasks' memory and
 * registers, and must take back when the tasks run on (docs/robustness.md):
 *
 *   O pid start fd ino reuse   the task's socket (fd `fd`, inode `ino`) is
 *                              in TCP repair mode: repair off and its
 *                              SO_REUSEADDR (`reuse`, which repair mode
 *                              overrides) put back
 *   o pid fd                   that socket is out of repair mode again
 *   C [argv...]                a command (JSON) that takes back something of
 *                              the run outside any task: the network lock's
 *                              nftables table, or one connection's iptables
 *                              rules
 *   W path                     a file of the run (the lock's marker),
 *                              removed once the commands ran
 *
 * The sockets and the commands are for a tree that runs on; a dump that was
 * killing its tree (X lines) leaves the lock and repair mode to the restore,
 * as a finished dump does. The marker goes either way: nobody holds it any
 * more, and a later run taking it for a dead dump's would remove a lock the
 * restore needs.
 */
import { childProcess } from '../builtins.js';
import { closeSync, fstatSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import {
  closeQuiet, openDirRootLinksOnly, pidfdGetfd, pidfdOpen, setsockoptInt, unlinkat, SOL_SOCKET, SOL_TCP, SO_REUSEADDR, TCP_REPAIR,
} from '../sys/index.js';
import { same } from './guardian-trackers.js';

/** A socket left in repair mode: pid, its start time, the task's fd, the socket's inode, SO_REUSEADDR to put back. */
export interface RepairLine { pid: number; start: string; fd: number; ino: bigint; reuse: number }

export interface UndoPlan {
  repairs: Map<string, RepairLine>;
  commands: string[][];
  files: string[];
}

export function emptyUndo(): UndoPlan {
  return { repairs: new Map(), commands: [], files: [] };
}

/** Take one line of the plan if it is one of ours; false if not. */
export function parseUndoLine(p: UndoPlan, line: string): boolean {
  const [k, a = '', b = '', c = '', d = '', e = ''] = line.split(' ');
  if (k === 'O') p.repairs.set(`${a} ${c}`, { pid: Number(a), start: b, fd: Number(c), ino: BigInt(d), reuse: Number(e) });
  else if (k === 'o') p.repairs.delete(`${a} ${b}`);
  else if (k === 'C') {
    try {
      const argv: unknown = JSON.parse(line.slice(2));
      if (Array.isArray(argv) && argv.length > 0 && argv.every((x) => typeof x === 'string')) p.commands.push(argv as string[]);
    } catch {
      // a line cut by criu-ts's death: nothing to run
    }
  } else if (k === 'W') p.files.push(line.slice(2));
  else return false;
  return true;
}

/** Take socket `r` out of repair mode, through a copy of the task's fd, if it is still that socket. */
function repairOff(r: RepairLine): boolean {
  if (!same(r.pid, r.start)) return false;
  const pidfd = pidfdOpen(r.pid);
  try {
    const fd = pidfdGetfd(pidfd, r.fd, r.pid);
    try {
      if (BigInt(fstatSync(fd).ino) !== r.ino) return false; // closed, and the number taken again
      setsockoptInt(fd, SOL_TCP, TCP_REPAIR, 0);
      setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, r.reuse);
      return true;
    } finally {
      closeQuiet(fd);
    }
  } finally {
    closeQuiet(pidfd);
  }
}

/**
 * Carry the plan out; `treeLives` is false when the dump was killing its
 * tree. Returns what was done, for the guardian's line.
 */
export function undoRun(p: UndoPlan, treeLives: boolean): string[] {
  const said: string[] = [];
  if (treeLives) {
    let n = 0;
    for (const r of p.repairs.values()) {
      try {
        if (repairOff(r)) n++;
      } catch (e) {
        said.push(`task ${r.pid} fd ${r.fd}: still in TCP repair mode: ${(e as Error).message}`);
      }
    }
    if (n > 0) said.push(`${n} TCP connection(s) taken out of repair mode`);
    let ran = 0;
    for (const argv of p.commands) {
      // Already undone (the run got that far) fails harmlessly: an absent table, a rule not there.
      const r = childProcess().spawnSync(argv[0] as string, argv.slice(1), { stdio: 'ignore', timeout: 30_000 });
      if (r.status === 0) ran++;
    }
    if (ran > 0) said.push('the network lock taken away');
  }
  for (const f of p.files) removeRestoreFile(f);
  return said;
}

/**
 * Remove a file (or an empty directory) of the run (a ghost a restore made, a lock's marker), through its
 * directory opened following only root's symlinks: a user's directory
 * swapped for a link since is left alone, never a way to unlink elsewhere.
 */
export function removeRestoreFile(path: string): void {
  let dirfd: number;
  try {
    dirfd = openDirRootLinksOnly(dirname(path));
  } catch {
    return; // gone, or reached only through a link of a user's
  }
  try {
    try {
      unlinkat(dirfd, basename(path));
    } catch {
      unlinkat(dirfd, basename(path), true);
    }
  } catch {
    // a directory not empty: not only ours any more
  } finally {
    closeSync(dirfd);
  }
}

