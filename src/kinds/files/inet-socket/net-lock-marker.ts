/**
 * The marker of a dump that holds a network lock,
 * /run/criu-ts/net-lock/<run id>: when criu-ts is killed before its dump is
 * over, nothing of it runs any more to take the lock away, and the next
 * criu-ts (dump or restore) removes the locks of such markers.
 *
 * Whether a marker's dump still runs is decided by a flock, not by a pid:
 * the dump holds an exclusive flock on its marker for as long as it runs,
 * and the kernel drops it with the dump's last fd on the file, killed or
 * not. A pid is wrong across pid namespaces (a criu-ts in a container
 * records its pid as seen there, and here that number is another process,
 * or none) and after pid reuse. The marker is created under a private dot
 * name, locked, and only then renamed into place, so it is never seen
 * unlocked while its dump lives; the dump unlinks it before letting go, so
 * a lock won on a file with no name left (nlink 0) is a dump that ended
 * normally, never a dead one. The first line stays the owner's pid (as it
 * sees it), for people reading the directory.
 *
 * Limits: a marker of an older criu-ts (no flock) reads as dead.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { flockTry, FLOCK, tempNameFor } from '../../../sys/index.js';

export const MARKERS = '/run/criu-ts/net-lock';
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** tempNameFor's names: a marker not renamed into place yet */
const TEMP = /^\.[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.\d+\.[0-9a-f]+\.tmp$/;

export interface Marker {
  readonly runId: string;
  /** one more line (the iptables lock lists its connections), written before the lock it names is taken */
  append(line: string): void;
  /** the dump is over: the marker goes, then the lock on it */
  release(): void;
}

/** Make and hold the marker of dump `runId` (`runId` checked by the caller); `lines` follow the pid line. */
export function claimMarker(runId: string, lines: readonly string[] = []): Marker {
  mkdirSync(MARKERS, { recursive: true, mode: 0o700 });
  const tmp = join(MARKERS, tempNameFor(runId));
  const path = join(MARKERS, runId);
  const fd = openSync(tmp, 'wx', 0o600); // O_CLOEXEC: no program we run keeps the lock alive
  try {
    if (flockTry(fd, FLOCK.EX | FLOCK.NB) < 0) throw new Error(`cannot lock ${tmp}`);
    writeSync(fd, [String(process.pid), ...lines, ''].join('\n'));
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    closeSync(fd);
    throw e;
  }
  let held = true;
  return {
    runId,
    append(line) {
      writeSync(fd, `${line}\n`);
    },
    release() {
      if (!held) return;
      held = false;
      try {
        rmSync(path, { force: true });
      } finally {
        closeSync(fd); // the lock goes with it
      }
    },
  };
}

/**
 * Every marker whose dump is gone (nobody holds its lock and it still has
 * its name): `clear` is called with its run id and lines (pid first) while
 * we hold its lock, then the marker is removed, whatever `clear` did.
 * Temporary markers of dumps killed before renaming theirs are removed.
 */
export function forEachDeadMarker(clear: (runId: string, lines: string[]) => void): void {
  let names: string[];
  try {
    names = readdirSync(MARKERS);
  } catch {
    return;
  }
  for (const name of names) {
    const temp = TEMP.test(name);
    if (!temp && !RUN_ID.test(name)) continue; // not one of ours
    const path = join(MARKERS, name);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      continue; // removed meanwhile by its dump, or by another criu-ts clearing it
    }
    try {
      // Held: its dump runs. Won with no name left: its dump ended and removed it.
      if (flockTry(fd, FLOCK.EX | FLOCK.NB) < 0 || fstatSync(fd).nlink === 0) continue;
      try {
        if (!temp) clear(name, readFileSync(fd, 'utf8').split('\n'));
      } finally {
        rmSync(path, { force: true });
      }
    } finally {
      closeSync(fd);
    }
  }
}
