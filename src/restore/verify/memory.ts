/**
 * The address space of a restored task: its VMA list (merged into ranges,
 * as the kernel merges and splits as it likes) and the content of every
 * private page the dump saved.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { ProcMem, PAGE_SIZE, MAP_SHARED } from '../../sys/index.js';
import { imagePath, PE_PARENT, PE_PRESENT } from '../../images/index.js';
import { parseSmaps } from '../../proc/index.js';
import type { SmapsEntry } from '../../proc/index.js';
import type { VmaEntry, PagemapEntry } from '../../images/messages.js';
import type { Tracee } from '../../infect/tracee.js';
import type { DumpImages, TaskImages } from '../images.js';
import type { Collector } from './diff.js';

interface VmaShape {
  start: bigint;
  end: bigint;
  prot: number;
  shared: boolean;
  anon: boolean;
  madv: bigint;
}

/** Adjacent pieces that agree in every compared respect are one range: the kernel merges or splits VMAs as it likes. */
function mergeShapes(list: VmaShape[]): VmaShape[] {
  const out: VmaShape[] = [];
  for (const v of [...list].sort((a, b) => (a.start < b.start ? -1 : 1))) {
    const last = out[out.length - 1];
    if (last && last.end === v.start && last.prot === v.prot && last.shared === v.shared && last.anon === v.anon && last.madv === v.madv) {
      last.end = v.end;
    } else out.push({ ...v });
  }
  return out;
}

const VMA_ANON = (1 << 8) | (1 << 9); // ANON_SHARED | ANON_PRIVATE
/** madvise bits the kernel shows in VmFlags (kinds/memory/vma.ts MADV_BY_VMFLAG): the others leave no trace to compare. */
const MADV_SEEN = [1, 2, 10, 12, 14, 15, 16, 18].reduce((m, b) => m | (1n << BigInt(b)), 0n);
const VMFLAG_MADV: Readonly<Record<string, number>> = { sr: 2, rr: 1, dc: 10, dd: 16, mg: 12, hg: 14, nh: 15, wf: 18 };

function shapeOfImage(v: VmaEntry): VmaShape {
  return {
    start: v.start, end: v.end, prot: v.prot, shared: (v.flags & MAP_SHARED) !== 0,
    anon: (v.status & VMA_ANON) !== 0 && (v.status & (1 << 14)) === 0, madv: (v.madv ?? 0n) & MADV_SEEN,
  };
}

function shapeOfSmaps(v: SmapsEntry): VmaShape {
  let madv = 0n;
  for (const f of v.vmFlags) {
    const a = VMFLAG_MADV[f];
    if (a !== undefined) madv |= 1n << BigInt(a);
  }
  const anon = v.path === '' || v.path === '[heap]' || v.path === '[stack]' || v.path.startsWith('[anon:') || v.path.startsWith('[anon_shmem:')
    || (v.path === '/dev/zero' && !(v.deleted && !v.shared)) // a private mapping of a shared object (via map_files) is a file mapping
    || v.path.startsWith('/SYSV') || v.path.startsWith('/anon_hugepage');
  return { start: v.start, end: v.end, prot: v.prot.value, shared: v.shared, anon, madv };
}

export function verifyVmas(pid: number, task: TaskImages, main: Tracee, c: Collector): void {
  const scratch = main.scratchRange;
  const special = (p: string): boolean => p === '[vdso]' || p === '[vvar]' || p === '[vvar_vclock]' || p === '[vsyscall]' || p === '[uprobes]';
  const restored = parseSmaps(pid)
    .filter((v) => !(scratch && v.start === scratch.addr) && !special(v.path))
    .map(shapeOfSmaps);
  // The vDSO, vvar and vsyscall areas are the kernel's; guard-page and uprobe areas are not VMAs of the task's own.
  const kernels = (1 << 2) | (1 << 3) | (1 << 12) | (1 << 16) | (1 << 17); // vsyscall, vdso, vvar, guard, uprobes
  const dumped = (task.mm.vmas ?? []).filter((v) => (v.status & kernels) === 0).map(shapeOfImage);
  const a = mergeShapes(dumped);
  const b = mergeShapes(restored);
  const key = (v: VmaShape): string => `${v.start.toString(16)}-${v.end.toString(16)} prot ${v.prot} ${v.shared ? 'shared' : 'private'} ${v.anon ? 'anon' : 'file'} madv 0x${v.madv.toString(16)}`;
  const ka = a.map(key);
  const kb = new Set(b.map(key));
  for (const k of ka) if (!kb.has(k)) c.add('mapping', k, b.filter((v) => v.start < BigInt(`0x${k.split('-')[1]?.split(' ')[0] ?? '0'}`) && v.end > BigInt(`0x${k.split('-')[0] ?? '0'}`)).map(key).join('; ') || 'nothing there');
  const kaSet = new Set(ka);
  for (const v of b) if (!kaSet.has(key(v)) && !a.some((x) => x.start < v.end && x.end > v.start)) c.add('mapping', 'nothing there', key(v));
}

const CHUNK = 1 << 20;

/** Every private page the dump saved, compared with the task's memory; the rseq areas' bytes are the kernel's. */
export function verifyPages(pid: number, task: TaskImages, img: DumpImages, main: Tracee, c: Collector): void {
  const rseq = task.cores.flatMap((k) => {
    const r = k.thread_core?.rseq_entry;
    return r && r.rseq_abi_pointer !== 0n ? [{ lo: r.rseq_abi_pointer, hi: r.rseq_abi_pointer + BigInt(Math.max(32, r.rseq_abi_size)) }] : [];
  });
  const path = imagePath(img.dir, 'PAGES', task.pagesId);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return; // the restore itself read it; an incremental dump's pages may live in the parent
  }
  const mine = Buffer.allocUnsafe(CHUNK);
  const theirs = Buffer.allocUnsafe(CHUNK);
  let mem: ProcMem | undefined;
  let off = 0;
  let reported = 0;
  try {
    for (const e of task.pagemap as PagemapEntry[]) {
      const flags = e.flags ?? PE_PRESENT;
      const bytes = Number(e.nr_pages ?? 0n) * PAGE_SIZE;
      if ((flags & PE_PARENT) !== 0 || (flags & PE_PRESENT) === 0) continue;
      for (let done = 0; done < bytes; done += CHUNK) {
        const len = Math.min(CHUNK, bytes - done);
        const addr = e.vaddr + BigInt(done);
        let got = 0;
        while (got < len) {
          const r = readSync(fd, mine, got, len - got, off + done + got);
          if (r === 0) break;
          got += r;
        }
        // Through /proc/PID/mem, never process_vm_readv: that pins the pages
        // it reads, and pinning an anonymous page a parent and child share
        // copies it (the copy-on-write sharing the restore kept would go).
        mem ??= new ProcMem(pid);
        let n = 0;
        while (n < len) {
          const r = mem.read(addr + BigInt(n), theirs, n, len - n);
          if (r <= 0) break;
          n += r;
        }
        if (n === len && mine.subarray(0, len).equals(theirs.subarray(0, len))) continue;
        for (let p = 0; p < len && reported < 3; p += PAGE_SIZE) {
          const pa = addr + BigInt(p);
          const a = mine.subarray(p, p + PAGE_SIZE);
          const b = theirs.subarray(p, p + PAGE_SIZE);
          if (a.equals(b)) continue;
          let i = 0;
          while (i < PAGE_SIZE && a[i] === b[i]) i++;
          const at = pa + BigInt(i);
          if (rseq.some((r) => at >= r.lo && at < r.hi)) {
            // Only the rseq bytes differ? Compare the page with them masked.
            const a2 = Buffer.from(a);
            const b2 = Buffer.from(b);
            for (const r of rseq) {
              for (let q = r.lo; q < r.hi; q++) if (q >= pa && q < pa + BigInt(PAGE_SIZE)) a2[Number(q - pa)] = b2[Number(q - pa)] ?? 0;
            }
            if (a2.equals(b2)) continue;
          }
          c.add(`memory at 0x${at.toString(16)}`, `byte 0x${(a[i] ?? 0).toString(16)}`, `byte 0x${(b[i] ?? 0).toString(16)}`);
          reported++;
        }
      }
      off += bytes;
    }
  } finally {
    closeSync(fd);
    mem?.close();
  }
  void main;
}

