/**
 * Reading a dump back: every image a restore needs, typed, with one clear
 * error naming the missing or malformed file.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKSUMS_IMAGE, readImage, verifyChecksums } from '../images/index.js';
import { CriuTsError } from '../errors.js';
import type {
  CoreEntry, CriuTsChecksumEntry, SeccompEntry, PstreeEntry, InventoryEntry, TaskKobjIdsEntry, MmEntry, PagemapEntry, FsEntry, FdinfoEntry, FileEntry,
} from '../images/messages.js';

export interface TaskImages {
  pstree: PstreeEntry;
  /** core of every thread, main thread first */
  cores: CoreEntry[];
  ids: TaskKobjIdsEntry;
  mm: MmEntry;
  pagemap: PagemapEntry[];
  pagesId: number;
  fs: FsEntry;
  fds: FdinfoEntry[];
}

export interface DumpImages {
  dir: string;
  inventory: InventoryEntry;
  /** every task of the tree, parents before children */
  pstree: PstreeEntry[];
  /** live (or stopped) tasks with their images */
  tasks: TaskImages[];
  /** zombies: only a core with the task core */
  zombies: Map<number, CoreEntry>;
  files: Map<number, FileEntry>;
  seccomp: SeccompEntry | undefined;
}

function load<T>(dir: string, name: string): T[] {
  const path = join(dir, name);
  if (!existsSync(path)) throw new CriuTsError('ENOIMAGE', `${path}: no such image`, { file: path });
  return readImage(path).entries as unknown as T[];
}

function one<T>(dir: string, name: string): T {
  const e = load<T>(dir, name)[0];
  if (e === undefined) throw new CriuTsError('EIMAGE', `${join(dir, name)}: empty image`, { file: join(dir, name) });
  return e;
}

/** criu-ts-checksums, when the dump has one (CRIU's dumps and older criu-ts dumps do not): every file listed must match. */
export function checkDumpChecksums(dir: string): void {
  const path = join(dir, CHECKSUMS_IMAGE);
  if (!existsSync(path)) return;
  verifyChecksums(dir, readImage(path).entries as unknown as CriuTsChecksumEntry[]);
}

export function loadDump(dir: string): DumpImages {
  if (!existsSync(dir)) throw new CriuTsError('EUSAGE', `images directory ${dir} does not exist`, { dir });
  const inventory = one<InventoryEntry>(dir, 'inventory.img');
  const pstree = load<PstreeEntry>(dir, 'pstree.img');
  if (pstree.length === 0) throw new CriuTsError('EIMAGE', `${join(dir, 'pstree.img')}: no tasks`, { dir });
  const files = new Map<number, FileEntry>();
  if (existsSync(join(dir, 'files.img'))) for (const f of load<FileEntry>(dir, 'files.img')) files.set(f.id, f);
  const zombies = new Map<number, CoreEntry>();
  const live = pstree.filter((p) => {
    const core = one<CoreEntry>(dir, `core-${p.pid}.img`);
    if (core.tc?.task_state === 2) {
      zombies.set(p.pid, core);
      return false;
    }
    return true;
  });
  const tasks = live.map((p): TaskImages => {
    const tids = p.threads?.length ? p.threads : [p.pid];
    const cores = tids.map((tid) => one<CoreEntry>(dir, `core-${tid}.img`));
    const ids = one<TaskKobjIdsEntry>(dir, `ids-${p.pid}.img`);
    const pm = load<Record<string, unknown>>(dir, `pagemap-${p.pid}.img`);
    const head = pm[0] as { pages_id?: number } | undefined;
    return {
      pstree: p,
      cores,
      ids,
      mm: one<MmEntry>(dir, `mm-${p.pid}.img`),
      pagemap: pm.slice(1) as unknown as PagemapEntry[],
      pagesId: head?.pages_id ?? 1,
      fs: one<FsEntry>(dir, `fs-${p.pid}.img`),
      fds: existsSync(join(dir, `fdinfo-${ids.files_id}.img`)) ? load<FdinfoEntry>(dir, `fdinfo-${ids.files_id}.img`) : [],
    };
  });
  const seccomp = existsSync(join(dir, 'seccomp.img')) ? load<SeccompEntry>(dir, 'seccomp.img')[0] : undefined;
  return { dir, inventory, pstree, tasks, zombies, files, seccomp };
}
