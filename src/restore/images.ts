/**
 * Reading a dump back: every image a restore needs, typed, with one clear
 * error naming the missing or malformed file.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { VMH256, decodeImageAs, lazyFields, deferBlockChecks, type BesideChecks, hasBlockDigests, imageFile, imagePath, loadChecksumsLean, loadImageIfAny, readImageBytes, verifyChecksums, vmhAvailable } from '../images/index.js';
import { addressSpace, type LazyRange } from '../kinds/index.js';
import type { ImageId, ImageKey, ProtoImageKey, EntryOf, TypedImage } from '../images/index.js';
import { CriuTsError } from '../errors.js';
import type {
  CoreEntry, PstreeEntry, InventoryEntry, TaskKobjIdsEntry, MmEntry, PagemapEntry, FsEntry, FdinfoEntry, FileEntry,
  CriuTsChecksumEntry,
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
}

/**
 * The images a restore reads: the bytes criu-ts-checksums verified
 * (`verified`: what was checked is what is decoded, with no second read),
 * else the file.
 */
class Images {
  constructor(readonly dir: string, private readonly verified: Map<string, Buffer> | undefined) {}

  /** The bytes of image `key`, or undefined when there is no such file. */
  bytesIfAny(key: ImageKey, id?: ImageId): { bytes: Buffer; path: string } | undefined {
    const name = imageFile(key, id);
    const path = join(this.dir, name);
    const kept = this.verified?.get(name);
    if (kept !== undefined) return { bytes: kept, path };
    return existsSync(path) ? { bytes: readImageBytes(path), path } : undefined;
  }

  ifAny<K extends ProtoImageKey>(key: K, id?: ImageId): TypedImage<K> | undefined {
    const b = this.bytesIfAny(key, id);
    return b === undefined ? undefined : decodeImageAs(key, b.bytes, b.path);
  }

  load<K extends ProtoImageKey>(key: K, id?: ImageId): TypedImage<K> {
    const img = this.ifAny(key, id);
    if (img === undefined) {
      const path = imagePath(this.dir, key, id);
      throw new CriuTsError('ENOIMAGE', `${path}: no such image`, { file: path });
    }
    return img;
  }

  /** The one entry of an image that holds one (inventory, ids, mm, fs): EIMAGE when it is empty. */
  one<K extends ProtoImageKey>(key: K, id?: ImageId): EntryOf<K> {
    const img = this.load(key, id);
    const e = (img.entries as readonly EntryOf<K>[])[0];
    if (e === undefined) throw new CriuTsError('EIMAGE', `${img.path}: empty image`, { file: img.path });
    return e;
  }
}

/**
 * criu-ts-checksums, when the dump has one (CRIU's dumps and older criu-ts
 * dumps do not): every file listed must match. A lazy restore (`lazy`)
 * leaves the files with block digests (pages images) out and returns
 * them: checkLazyPagesChecksums checks them once the pagemaps say which
 * of their bytes the lazy-pages daemon serves (and checks) instead.
 */
export function checkDumpChecksums(
  dir: string, lazy = false, beside?: (c: BesideChecks) => void,
): { later: CriuTsChecksumEntry[]; listed?: ReadonlySet<string>; verified?: Map<string, Buffer> } {
  // Lazy: the block digests stay in the file, read only for the blocks the restore reads itself (images/checksums-lean.ts).
  const sums = lazy ? loadChecksumsLean(dir) : loadImageIfAny(dir, 'CRIU_TS_CHECKSUMS');
  if (sums === undefined) return { later: [] };
  const later = lazy ? sums.entries.filter(hasBlockDigests) : [];
  // `beside`: vmh256 pages files are checked while the tasks' preadv fill from them (images/beside-checks.ts); `beside` gets their checks.
  const vmhFiles = !lazy && beside !== undefined ? sums.entries.filter((e) => e.blocks !== undefined && e.algorithm === VMH256 && e.freed === undefined) : [];
  const deferrable = vmhFiles.length > 0 && vmhAvailable() ? vmhFiles : [];
  const { checks, notDeferred } = deferBlockChecks(dir, deferrable);
  beside?.(checks);
  const verified = new Map<string, Buffer>();
  verifyChecksums(dir, sums.entries.filter((e) => !later.includes(e) && (!deferrable.includes(e) || notDeferred.includes(e))), undefined, undefined, verified);
  return { later, listed: new Set(sums.entries.map((e) => e.name)), verified };
}

/** The pages images left by checkDumpChecksums(dir, true): every block but those wholly inside a lazy VMA's pages. */
export function checkLazyPagesChecksums(img: DumpImages, later: readonly CriuTsChecksumEntry[]): void {
  if (later.length === 0) return;
  const lazy = new Map<string, LazyRange[]>();
  const space = addressSpace();
  for (const t of img.tasks) {
    const { file, ranges } = space.lazyReads(t);
    lazy.set(file, [...lazy.get(file) ?? [], ...ranges]);
  }
  verifyChecksums(img.dir, later, (name) => lazy.get(name));
}

/**
 * A live thread's FPU state is decoded afresh from the image's bytes
 * (kept: 1-2 KiB) whenever it is asked for (restoreFpu, --verify), not
 * decoded for every thread up front and held: the XSAVE areas as arrays
 * of numbers and BigInts are 7 of a decoded core's 11 KiB (7 MiB of live
 * heap in a 1000-thread restore) and most of its decoding. Its bytes are
 * checked here as a decode would check them (images/lazy-fields.ts), so
 * the later decode cannot fail.
 */
const LAZY_FPU = lazyFields(['thread_info_x86', 'fpregs']);

function threadCore(images: Images, tid: number): CoreEntry {
  const got = images.bytesIfAny('CORE', tid);
  const path = got?.path ?? imagePath(images.dir, 'CORE', tid);
  if (got === undefined) throw new CriuTsError('ENOIMAGE', `${path}: no such image`, { file: path });
  const core = decodeImageAs('CORE', got.bytes, path, LAZY_FPU).entries[0];
  if (core === undefined) throw new CriuTsError('EIMAGE', `${path}: empty image`, { file: path });
  return core;
}

/**
 * The pages a restore takes from parent images (PE_PARENT entries, through
 * the chain), checked against each parent's own criu-ts-checksums: only
 * the blocks those pages lie in (a parent's other pages may be freed by a
 * dedup). A parent without checksums (CRIU's pre-dump, a page server's
 * files) is read as it is. A lazy restore leaves the pages of lazy VMAs
 * to the daemon, which checks each block as it serves it.
 */
export function checkParentPages(img: DumpImages, lazy: boolean): void {
  const reads = addressSpace().parentReads(img.dir, img.tasks.map((t) => ({ pid: t.pstree.pid, images: t })), lazy);
  const dirs = new Set([...reads.keys()].map((p) => dirname(p)));
  for (const d of dirs) {
    const sums = loadImageIfAny(d, 'CRIU_TS_CHECKSUMS');
    if (sums === undefined) continue;
    const want = (name: string): readonly LazyRange[] | undefined => reads.get(`${d}/${name}`);
    verifyChecksums(d, sums.entries.filter((e) => want(e.name) !== undefined), undefined, want);
  }
}

/** `verified`: the bytes checkDumpChecksums checked, by file name; emptied once the images are read (they are garbage then). */
export function loadDump(dir: string, verified?: Map<string, Buffer>): DumpImages {
  if (!existsSync(dir)) throw new CriuTsError('EUSAGE', `images directory ${dir} does not exist`, { dir });
  const images = new Images(dir, verified);
  const inventory: InventoryEntry = images.one('INVENTORY');
  const pstree: PstreeEntry[] = [...images.load('PSTREE').entries];
  if (pstree.length === 0) throw new CriuTsError('EIMAGE', `${imagePath(dir, 'PSTREE')}: no tasks`, { dir });
  const files = new Map<number, FileEntry>();
  for (const f of images.ifAny('FILES')?.entries ?? []) files.set(f.id, f);
  const zombies = new Map<number, CoreEntry>();
  // Each task's main core, decoded once: it says whether the task is a zombie, and is its first thread's core.
  const mainCores = new Map<number, CoreEntry>();
  const live = pstree.filter((p) => {
    const core = threadCore(images, p.pid);
    if (core.tc?.task_state === 2) {
      zombies.set(p.pid, core);
      return false;
    }
    mainCores.set(p.pid, core);
    return true;
  });
  const tasks = live.map((p): TaskImages => {
    const tids = p.threads?.length ? p.threads : [p.pid];
    const cores = tids.map((tid, i) => (i === 0 && tid === p.pid ? mainCores.get(p.pid) : undefined) ?? threadCore(images, tid));
    const ids = images.one('IDS', p.pid);
    const [head, ...pagemap] = images.load('PAGEMAP', p.pid).entries;
    return {
      pstree: p,
      cores,
      ids,
      mm: images.one('MM', p.pid),
      pagemap,
      pagesId: head.pages_id,
      fs: images.one('FS', p.pid),
      fds: [...images.ifAny('FDINFO', ids.files_id)?.entries ?? []],
    };
  });
  verified?.clear();
  return { dir, inventory, pstree, tasks, zombies, files };
}
