/**
 * `crit x DIR ps|fds|mems|rss`: walk a whole dump directory. Output lines are
 * formatted exactly as crit 4.2 prints them. Unlike crit, a task whose
 * images CRIU did not write (a zombie has only core + pstree) is skipped
 * instead of aborting the whole listing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { imagePath, readImage } from '../images/index.js';
import { MAP_GROWSDOWN } from '../sys/mman.js';
import type { ImageId, ImageKey, Message } from '../images/index.js';
import { quopriEncode } from '../images/json/pretty.js';

type Out = (line: string) => void;

function n(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0;
}

function big(v: unknown): bigint {
  return typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : 0n;
}

function hex(v: unknown, width = 0): string {
  return big(v).toString(16).padStart(width, '0');
}

function padEnd(s: string, w: number): string {
  return s.length >= w ? s : s + ' '.repeat(w - s.length);
}

function padStart(s: string, w: number): string {
  return s.length >= w ? s : ' '.repeat(w - s.length) + s;
}

/** The dump directory and its cached images. */
class Dump {
  private files: Message[] | undefined;
  private regFiles: Message[] | undefined;
  private readonly cache = new Map<string, string>();

  constructor(readonly dir: string) {}

  has(key: ImageKey, id?: ImageId): boolean {
    return existsSync(imagePath(this.dir, key, id));
  }

  /** As crit reads them: untyped, whatever layout and fields the dump has. */
  entries(key: ImageKey, id?: ImageId): Message[] {
    return readImage(imagePath(this.dir, key, id)).entries;
  }

  first(key: ImageKey, id?: ImageId): Message {
    return this.entries(key, id)[0] ?? {};
  }

  pstree(): Message[] {
    return this.entries('PSTREE');
  }

  /** files.img entry by id (empty when the dump has no files.img, i.e. an old layout). */
  private fileEntry(id: number): Message | undefined {
    if (this.files === undefined) this.files = this.has('FILES') ? this.entries('FILES') : [];
    return this.files.find((f) => n(f['id']) === id);
  }

  /** The sub-message of a file object, from files.img or else the old per-type image. */
  private lookup(field: string, oldImage: ImageKey, id: number): Message | undefined {
    const f = this.fileEntry(id);
    if (f !== undefined) return f[field] as Message | undefined;
    if (field === 'reg') {
      if (this.regFiles === undefined) this.regFiles = this.has(oldImage) ? this.entries(oldImage) : [];
      return this.regFiles.find((r) => n(r['id']) === id);
    }
    return this.has(oldImage) ? this.entries(oldImage).find((r) => n(r['id']) === id) : undefined;
  }

  /** crit's get_file_str: a short description of a file object. */
  fileStr(type: string, id: number): string {
    const key = `${type}/${id}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    let s: string;
    if (type === 'REG') {
      const rf = this.lookup('reg', 'REG_FILES', id);
      const name = rf?.['name'];
      s = typeof name === 'string' && name !== '' ? name : 'unknown path';
    } else if (type === 'PIPE') {
      const p = this.lookup('pipe', 'PIPES', id);
      s = p !== undefined ? `pipe[${n(p['pipe_id'])}]` : 'pipe[?]';
    } else if (type === 'UNIXSK') {
      const ux = this.lookup('usk', 'UNIXSK', id);
      if (ux === undefined) s = 'unix[?]';
      else {
        const raw = ux['name'];
        const name = raw instanceof Uint8Array && raw.length > 0 ? ` ${quopriEncode(raw)}` : '';
        s = `unix[${n(ux['ino'])} (${n(ux['peer'])})${name}]`;
      }
    } else {
      s = `${type}.${id}`;
    }
    this.cache.set(key, s);
    return s;
  }
}

function pidOf(p: Message): number {
  return n(p['pid']);
}

export function explorePs(dir: string, out: Out): void {
  const d = new Dump(dir);
  interface Item { p: Message; comm: string; kids: Item[] }
  const items = new Map<number, Item>();
  for (const p of d.pstree()) {
    const pid = pidOf(p);
    const core = d.has('CORE', pid) ? d.first('CORE', pid) : {};
    const tc = core['tc'] as Message | undefined;
    items.set(pid, { p, comm: typeof tc?.['comm'] === 'string' ? tc['comm'] : '?', kids: [] });
  }
  const roots: Item[] = [];
  for (const it of items.values()) {
    const parent = items.get(n(it.p['ppid']));
    if (n(it.p['ppid']) === 0 || parent === undefined) roots.push(it);
    else parent.kids.push(it);
  }
  out(`${padStart('PID', 7)}${padStart('PGID', 7)}${padStart('SID', 7)}   COMM`);
  const show = (it: Item, depth: number): void => {
    const cols = [pidOf(it.p), n(it.p['pgid']), n(it.p['sid'])].map((x) => padStart(String(x), 7)).join('');
    out(`${cols}   ${' '.repeat(4 * depth)}${it.comm}`);
    for (const k of it.kids) show(k, depth + 1);
  };
  for (const r of roots) show(r, 0);
}

export function exploreFds(dir: string, out: Out): void {
  const d = new Dump(dir);
  for (const p of d.pstree()) {
    const pid = pidOf(p);
    if (!d.has('IDS', pid) || !d.has('FS', pid)) continue;
    const filesId = n(d.first('IDS', pid)['files_id']);
    if (!d.has('FDINFO', filesId)) continue;
    out(String(pid));
    for (const fd of d.entries('FDINFO', filesId)) {
      out(`\t${padStart(String(n(fd['fd'])), 7)}: ${d.fileStr(String(fd['type']), n(fd['id']))}`);
    }
    const fs = d.first('FS', pid);
    out(`\t${padStart('cwd', 7)}: ${d.fileStr('REG', n(fs['cwd_id']))}`);
    out(`\t${padStart('root', 7)}: ${d.fileStr('REG', n(fs['root_id']))}`);
  }
}

const VMA_AREA_REGULAR = 1 << 0;
const VMA_AREA_STACK = 1 << 1;
const VMA_AREA_VSYSCALL = 1 << 2;
const VMA_AREA_VDSO = 1 << 3;
const VMA_FILE_PRIVATE = 1 << 6;
const VMA_FILE_SHARED = 1 << 7;
const VMA_ANON_SHARED = 1 << 8;
const VMA_AREA_SYSVIPC = 1 << 10;
const VMA_AREA_SOCKET = 1 << 11;

export function exploreMems(dir: string, out: Out): void {
  const d = new Dump(dir);
  // Shared-memory ids are numbered in order of first appearance, across tasks.
  const ids = new Map<bigint, number>();
  const vid = (shmid: unknown): string => {
    const k = big(shmid);
    let v = ids.get(k);
    if (v === undefined) {
      v = ids.size + 1;
      ids.set(k, v);
    }
    return v.toString(16);
  };
  for (const p of d.pstree()) {
    const pid = pidOf(p);
    if (!d.has('MM', pid)) continue;
    const mm = d.first('MM', pid);
    out(String(pid));
    out(`\t${padEnd('exe', 36)}    ${d.fileStr('REG', n(mm['exe_file_id']))}`);
    for (const vma of (mm['vmas'] as Message[] | undefined) ?? []) {
      const st = n(vma['status']);
      let fn: string;
      if (st & VMA_AREA_SYSVIPC) fn = ` ips[${vid(vma['shmid'])}]`;
      else if (st & VMA_ANON_SHARED) fn = ` shmem[${vid(vma['shmid'])}]`;
      else if (st & VMA_AREA_SOCKET) fn = ` packet[${vid(vma['shmid'])}]`;
      else if (st & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) {
        fn = ` ${d.fileStr('REG', n(vma['shmid']))}`;
        if (big(vma['pgoff']) !== 0n) fn += ` + 0x${hex(vma['pgoff'])}`;
        if (st & VMA_FILE_SHARED) fn += ' (s)';
      } else if (st & VMA_AREA_STACK) fn = ' [stack]';
      else if (st & VMA_AREA_VSYSCALL) fn = ' [vsyscall]';
      else if (st & VMA_AREA_VDSO) fn = ' [vdso]';
      else if (n(vma['flags']) & MAP_GROWSDOWN) fn = ' [stack?]';
      else fn = '';
      if (!(st & VMA_AREA_REGULAR)) fn += ' *';
      const prot = n(vma['prot']);
      const ps = `${prot & 1 ? 'r' : '-'}${prot & 2 ? 'w' : '-'}${prot & 4 ? 'x' : '-'}`;
      out(`\t${padEnd(`${hex(vma['start'], 8)}-${hex(vma['end'], 8)}`, 36)}${ps}${fn}`);
    }
  }
}

export function exploreRss(dir: string, out: Out): void {
  const d = new Dump(dir);
  for (const p of d.pstree()) {
    const pid = pidOf(p);
    if (!d.has('MM', pid) || !d.has('PAGEMAP', pid)) continue;
    const vmas = (d.first('MM', pid)['vmas'] as Message[] | undefined) ?? [];
    const pms = d.entries('PAGEMAP', pid);
    out(String(pid));
    let vmi = 0;
    let pvmi = -1;
    for (const pm of pms.slice(1)) {
      const nr = pm['nr_pages'] !== undefined ? big(pm['nr_pages']) : big(pm['compat_nr_pages']);
      const vaddr = big(pm['vaddr']);
      const pstr = `\t${hex(vaddr)} / ${padEnd(String(nr), 8)}`;
      while (vmi < vmas.length && big(vmas[vmi]?.['end']) <= vaddr) vmi++;
      const pme = vaddr + (nr << 12n);
      let vstr = '';
      while (vmi < vmas.length && big(vmas[vmi]?.['start']) < pme) {
        const vma = vmas[vmi] as Message;
        if (vmi === pvmi) vstr += ' ~';
        else {
          const pages = (big(vma['end']) - big(vma['start'])) >> 12n;
          vstr += ` ${hex(vma['start'], 8)} / ${padEnd(String(pages), 8)}`;
          if (n(vma['status']) & (VMA_FILE_PRIVATE | VMA_FILE_SHARED)) vstr += ` ${d.fileStr('REG', n(vma['shmid']))}`;
          pvmi = vmi;
        }
        vstr += `\n\t${' '.repeat(23)}`;
        vmi++;
      }
      vmi--;
      out(`${padEnd(pstr, 24)}${vstr}`);
    }
  }
}

export const EXPLORERS: Readonly<Record<string, (dir: string, out: Out) => void>> = {
  ps: explorePs,
  fds: exploreFds,
  mems: exploreMems,
  rss: exploreRss,
};
