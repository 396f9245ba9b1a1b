/**
 * Chains of images (CRIU's pre-dump layout): an images dir may hold a
 * `parent` symlink, relative, to the images dir of the dump before it.
 * A pagemap entry with PE_PARENT (or the old in_parent) says "these pages
 * did not change: take them from the parent", where the parent's pagemap
 * image of the same name has them, itself perhaps from its own parent.
 *
 * The dump asks which addresses a parent holds for a task (only those may
 * be marked PE_PARENT); the restore asks where, in which pages file and at
 * which offset, each of those pages is.
 */
import { readlinkSync, symlinkSync, unlinkSync, existsSync, statSync, lstatSync, readdirSync } from 'node:fs';
import { join, resolve, relative } from 'node:path';
import { readImage, imagePath, imageIdOf } from '../../images/index.js';
import type { PagemapEntry } from '../../images/messages.js';
import { CriuTsError } from '../../errors.js';
import { PAGE_SIZE } from '../../sys/index.js';
import { PE_LAZY, PE_PARENT, PE_PRESENT } from '../../images/flags.js';
import { stateKey, type RestoreContext } from '../types.js';
import { byStart, merged, type Range } from './ranges.js';

export const PARENT_LINK = 'parent';
const MAX_CHAIN = 1024;

export interface Segment { path: string; off: bigint; vaddr: bigint; len: bigint }

interface IndexedEntry { start: bigint; end: bigint; parent: boolean; off: bigint }
interface PagemapIndex { pagesPath: string; entries: IndexedEntry[] }

export function entryPages(e: PagemapEntry): bigint {
  return e.nr_pages !== undefined && e.nr_pages !== 0n ? e.nr_pages : BigInt(e.compat_nr_pages);
}

/** The addresses a pagemap's entries cover (present, lazy or in the parent), sorted and merged. */
export function pagemapRanges(entries: readonly PagemapEntry[]): Range[] {
  return merged(entries.map((e) => ({ start: e.vaddr, end: e.vaddr + entryPages(e) * BigInt(PAGE_SIZE) })));
}

export function isParentEntry(e: PagemapEntry): boolean {
  return ((e.flags ?? 0) & PE_PARENT) !== 0 || e.in_parent === true;
}

/**
 * An entry of a `dump --lazy-pages` (PE_LAZY without PE_PRESENT): its pages
 * are in no pages image; the dump's page server holds them (from the
 * frozen tasks) for a `lazy-pages --page-server` daemon.
 */
export function isServedEntry(e: PagemapEntry): boolean {
  const f = e.flags ?? 0;
  return (f & PE_LAZY) !== 0 && (f & PE_PRESENT) === 0 && !isParentEntry(e);
}

/** The images dir `dir/parent` points to; undefined when there is no link. A broken link is an error. */
export function parentDir(dir: string): string | undefined {
  const link = join(dir, PARENT_LINK);
  let target: string;
  try {
    target = readlinkSync(link);
  } catch {
    return undefined;
  }
  const abs = resolve(dir, target);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new CriuTsError('EIMAGE', `${link} points to ${target}, which is not an images directory (the parent images are missing)`, { dir, target });
  }
  return abs;
}

/** Make `dir/parent` a relative link to `prev`, as CRIU does. */
export function linkParent(dir: string, prev: string): void {
  const link = join(dir, PARENT_LINK);
  try {
    if (lstatSync(link)) unlinkSync(link);
  } catch {
    // no link yet
  }
  symlinkSync(relative(resolve(dir), resolve(prev)) || '.', link);
}

function loadIndex(dir: string, name: string): PagemapIndex | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) return undefined;
  const img = readImage(path);
  const head = img.entries[0] as { pages_id?: number } | undefined;
  if (!head || head.pages_id === undefined) throw new CriuTsError('EIMAGE', `${path}: no pagemap head`, { path });
  const entries: IndexedEntry[] = [];
  let off = 0n;
  for (const e of img.entries.slice(1) as unknown as PagemapEntry[]) {
    const len = entryPages(e) * BigInt(PAGE_SIZE);
    // Pages only the dump's page server held are in no image of this chain.
    if (isServedEntry(e)) continue;
    const parent = isParentEntry(e);
    entries.push({ start: e.vaddr, end: e.vaddr + len, parent, off });
    if (!parent) off += len;
  }
  entries.sort(byStart);
  return { pagesPath: imagePath(dir, 'PAGES', head.pages_id), entries };
}

/** Address ranges (sorted, merged) the images in `dir` hold for pagemap image `name`, directly or through their parents. */
export function coverage(dir: string, name: string): Range[] {
  return merged(loadIndex(dir, name)?.entries ?? []);
}

/**
 * Finds pages in a chain of images. One per restore: pagemaps are loaded
 * once per directory and name.
 */
export class ParentChain {
  private readonly cache = new Map<string, PagemapIndex | null>();

  constructor(private readonly dir: string) {}

  private index(dir: string, name: string): PagemapIndex | undefined {
    const key = join(dir, name);
    let v = this.cache.get(key);
    if (v === undefined) {
      v = loadIndex(dir, name) ?? null;
      this.cache.set(key, v);
    }
    return v ?? undefined;
  }

  /**
   * Where the `len` bytes at `vaddr` of pagemap image `name` are, for an
   * entry of the images in `from` (default: this chain's own dir) marked
   * PE_PARENT. Throws EIMAGE naming the pages and the chain when some are
   * in no parent.
   */
  locate(name: string, vaddr: bigint, len: bigint, from = this.dir, depth = 0): Segment[] {
    const parent = parentDir(from);
    if (parent === undefined) {
      throw new CriuTsError('EIMAGE', `${join(from, name)}: pages at 0x${vaddr.toString(16)} are in the parent images, but ${join(from, PARENT_LINK)} does not exist`, { dir: from, name });
    }
    if (depth >= MAX_CHAIN) throw new CriuTsError('EIMAGE', `${from}: chain of parent images longer than ${MAX_CHAIN} (a loop?)`, { dir: from });
    const idx = this.index(parent, name);
    const missing = (at: bigint): never => {
      throw new CriuTsError('EIMAGE', `${join(parent, name)}: has no pages at 0x${at.toString(16)}, which ${join(from, name)} takes from it`, { dir: parent, name });
    };
    if (!idx) missing(vaddr);
    const es = (idx as PagemapIndex).entries;
    const out: Segment[] = [];
    let at = vaddr;
    const end = vaddr + len;
    // First entry that ends after `at` (entries are sorted and do not overlap).
    let lo = 0;
    let hi = es.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((es[mid] as IndexedEntry).end <= at) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; at < end; i++) {
      const e = es[i];
      if (!e || e.start > at) missing(at);
      const ent = e as IndexedEntry;
      const to = ent.end < end ? ent.end : end;
      if (ent.parent) {
        out.push(...this.locate(name, at, to - at, parent, depth + 1));
      } else {
        const seg = { path: (idx as PagemapIndex).pagesPath, off: ent.off + (at - ent.start), vaddr: at, len: to - at };
        const last = out[out.length - 1];
        if (last && last.path === seg.path && last.off + last.len === seg.off && last.vaddr + last.len === seg.vaddr) last.len += seg.len;
        else out.push(seg);
      }
      at = to;
    }
    return out;
  }
}

/**
 * CRIU's dedup for a chain ending in `dir`: in every ancestor's pages
 * files, punch a hole (fallocate PUNCH_HOLE, the size stays) over every
 * page the restore of `dir` will not read: pages a newer image holds
 * again. Only the tasks of `dir` (its pagemap-<pid>.img) are considered;
 * afterwards only `dir` restores (its ancestors have lost pages), as with
 * CRIU. Returns the bytes punched.
 */
export function dedupChain(dir: string, punch: (path: string, off: bigint, len: bigint) => void): bigint {
  const chain = new ParentChain(dir);
  const used = new Map<string, Range[]>();
  const ancestors: string[] = [];
  for (let d = parentDir(dir); d !== undefined && ancestors.length < MAX_CHAIN; d = parentDir(d)) ancestors.push(d);
  if (ancestors.length === 0) return 0n;
  const names = readdirSync(dir).filter((n) => imageIdOf('PAGEMAP', n) !== undefined);
  for (const name of names) {
    const idx = loadIndex(dir, name);
    for (const e of idx?.entries ?? []) {
      if (!e.parent) continue;
      for (const sg of chain.locate(name, e.start, e.end - e.start)) {
        let rs = used.get(sg.path);
        if (!rs) used.set(sg.path, (rs = []));
        rs.push({ start: sg.off, end: sg.off + sg.len });
      }
    }
  }
  let punched = 0n;
  for (const anc of ancestors) {
    for (const name of names) {
      const idx = loadIndex(anc, name);
      if (!idx) continue;
      let size = 0n;
      for (const e of idx.entries) if (!e.parent) size += e.end - e.start;
      const keep = merged(used.get(idx.pagesPath) ?? []);
      // Everything of this pages file but what is kept.
      let at = 0n;
      for (const k of [...keep, { start: size, end: size }]) {
        if (k.start > at) {
          punch(idx.pagesPath, at, k.start - at);
          punched += k.start - at;
        }
        if (k.end > at) at = k.end;
      }
    }
  }
  return punched;
}

const PARENT_CHAIN = stateKey<ParentChain>('memory:parent-chain');

/** The restore's one chain walker (pagemaps of pre-dump parents are loaded once). */
export function parentChainOf(ctx: RestoreContext): ParentChain {
  return ctx.state(PARENT_CHAIN, () => new ParentChain(ctx.dir));
}
