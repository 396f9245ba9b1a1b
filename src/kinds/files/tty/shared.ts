/**
 * What the terminal modules share: CRIU's tty_info ids, and the per-restore
 * state (masters made, terminals taken as controlling terminals, the
 * dump's TTY entries and infos).
 */
import type { FileEntry, TtyInfoEntry } from '../../../images/messages.js';
import { NR, O_NOCTTY, AT_FDCWD } from '../../../sys/index.js';
import { CriuTsError } from '../../../errors.js';
import { imageFile } from '../../../images/index.js';
import { stateKey, type RestoreContext, type RestoreTaskHandle } from '../../types.js';

/** Info ids of non-pty terminals (/dev/tty) stay clear of the pty ids (index * 2 + master). */
export const CTTY_INFO_ID = 1 << 30;

export function infoIdOf(index: number, master: boolean): number {
  return index * 2 + (master ? 1 : 0);
}

export function openPath(t: RestoreTaskHandle, path: string, flags: number): number {
  return Number(t.syscall(`open ${path}`, NR.openat, AT_FDCWD, t.putString(path), flags & ~0o2000000, 0));
}

export interface TtyRestoreState {
  /** pty masters made, index → the fd in the task that made it */
  masters: Map<number, number>;
  /** tasks whose controlling terminal is set */
  cttyOf: Set<number>;
  /** tasks whose controlling terminal (a slave fd of theirs) was opened ahead of their /dev/tty */
  slaveFirst: Set<number>;
  /** masters made in our own process for slaves whose master was gone at dump (hung up), by index */
  fakeMasters: Map<number, number>;
  /** indexes of terminals whose new master was handed out (orphan_pts_master) */
  orphans: Set<number>;
  /** masters made while the mounts were built (a slave bind-mounted elsewhere), by index: our fd, taken by the master's task */
  premade: Map<number, number>;
}

const RESTORED = stateKey<TtyRestoreState>('tty:restored');

export function restored(ctx: RestoreContext): TtyRestoreState {
  return ctx.state(RESTORED, () => ({ masters: new Map(), cttyOf: new Set(), slaveFirst: new Set(), fakeMasters: new Map(), orphans: new Set(), premade: new Map() }));
}

export function ttyInfo(ctx: RestoreContext, id: number): TtyInfoEntry {
  const info = ctx.kindImage('TTY_INFO').entries.find((x) => x.id === id);
  if (!info) throw new CriuTsError('EIMAGE', `${imageFile('TTY_INFO')} has no terminal ${id}`, { id });
  return info;
}

const TTY_FILES = stateKey<readonly FileEntry[]>('tty:files');

/** Every TTY file entry of the dump. */
export function ttyFiles(ctx: RestoreContext): readonly FileEntry[] {
  return ctx.state(TTY_FILES, () => ctx.files.filter((f) => f.type === 'TTY'));
}

/** The TTY file entry of the dump that opened terminal `infoId`, if any. */
export function fileOfInfo(ctx: RestoreContext, infoId: number): FileEntry | undefined {
  return ttyFiles(ctx).find((f) => f.tty?.tty_info_id === infoId);
}
