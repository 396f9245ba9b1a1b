/**
 * Images checked against each other before anything is created (issue 9):
 * a dump with a piece missing or out of step must be refused with one line
 * naming the image and the field, never restored with parts silently left
 * out (a task with 1 of its 4 threads, a task with no fds, pages shifted).
 *
 * - pstree.img: every live task lists its threads; every core-TID.img
 *   belongs to a task or thread pstree.img names;
 * - fdinfo-FILESID.img exists for every task (a missing one is an error,
 *   not "no fds"), and every fd names a file id that files.img has;
 * - pagemap-*.img: the pages they say are in pages-N.img add up to that
 *   file's size exactly;
 * - pstree.img: every pid, ppid, pgid, sid and thread id is one task's
 *   (1..PID_MAX_LIMIT; 0 where "none" is meant): -1 would signal every
 *   process;
 * - inventory.img: the dump's run id is a plain id (it names an nftables
 *   table in a command).
 *
 * Files in the directory that the dump's criu-ts-checksums does not list
 * (left by an earlier dump into the same directory: CRIU overwrites what it
 * writes and leaves the rest) are not the dump's and are passed over; a
 * dump without that list (CRIU's, or --skip-checksums) has every file
 * taken as its own.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CriuTsError } from '../errors.js';
import { imageFile, imageIdOf, loadImage, PE_PARENT, PE_PRESENT } from '../images/index.js';
import type { PagemapEntry } from '../images/messages.js';
import type { DumpImages } from './images.js';
import { RESOURCE_KINDS } from '../kinds/index.js';
import { PID_MAX_LIMIT, PAGE_SIZE } from '../sys/index.js';
import { logger } from '../log.js';

const log = logger('restore');


function isPid(v: number): boolean {
  return Number.isInteger(v) && v > 0 && v <= PID_MAX_LIMIT;
}

function bad(file: string, field: string, what: string): never {
  throw new CriuTsError('EIMAGE', `${file}: ${field}: ${what}`, { file, field });
}

/** Pages a pagemap says are in its pages file (not in a parent dump). */
function pagesInFile(entries: readonly PagemapEntry[]): bigint {
  let n = 0n;
  for (const e of entries) {
    const flags = e.flags ?? PE_PRESENT;
    if ((flags & PE_PARENT) !== 0 || e.in_parent === true || (flags & PE_PRESENT) === 0) continue;
    n += e.nr_pages ?? BigInt(e.compat_nr_pages);
  }
  return n;
}

export function checkConsistency(img: DumpImages, listed?: ReadonlySet<string>): void {
  const dir = img.dir;
  const ours = (name: string): boolean => {
    if (listed === undefined || listed.has(name)) return true;
    log.warn(`${name}: not part of this dump (not in its ${imageFile('CRIU_TS_CHECKSUMS')}; left by an earlier dump into ${dir}?): passed over`);
    return false;
  };
  // What of inventory.img the kinds act on (a lock's run id, spliced into a command).
  for (const k of RESOURCE_KINDS) k.checkInventory?.(img.inventory);
  // Pids: a single task's each (a pid that kill(2) or clone3's set_tid would read as a group, or "all", is refused).
  for (const p of img.pstree) {
    const who = `task ${p.pid}`;
    if (!isPid(p.pid)) bad(imageFile('PSTREE'), 'pid', `${p.pid} is not a pid (1..${PID_MAX_LIMIT})`);
    for (const [field, v] of [['ppid', p.ppid], ['pgid', p.pgid], ['sid', p.sid]] as const) {
      if (v !== 0 && !isPid(v)) bad(imageFile('PSTREE'), `${who} ${field}`, `${v} is not a pid (0, or 1..${PID_MAX_LIMIT})`);
    }
    for (const t of p.threads ?? []) if (t !== 0 && !isPid(t)) bad(imageFile('PSTREE'), `${who} threads`, `${t} is not a pid (1..${PID_MAX_LIMIT})`);
  }
  // Threads: pstree names them all, and no core is left over.
  const tids = new Set<number>();
  for (const p of img.pstree) {
    tids.add(p.pid);
    for (const t of p.threads ?? []) tids.add(t);
  }
  for (const t of img.tasks) {
    const threads = t.pstree.threads ?? [];
    if (threads.length === 0) bad(imageFile('PSTREE'), `task ${t.pstree.pid} threads`, 'empty (a live task has at least its main thread)');
    if (!threads.includes(t.pstree.pid)) bad(imageFile('PSTREE'), `task ${t.pstree.pid} threads`, `[${threads.join(', ')}] leave out the main thread ${t.pstree.pid}`);
  }
  for (const name of readdirSync(dir)) {
    const tid = imageIdOf('CORE', name);
    if (tid !== undefined && !tids.has(Number(tid)) && ours(name)) bad(name, 'thread', `${tid} is in no task's threads in ${imageFile('PSTREE')}`);
  }
  // Files: each task's fdinfo exists and names files that exist.
  for (const t of img.tasks) {
    const name = imageFile('FDINFO', t.ids.files_id);
    if (!existsSync(join(dir, name))) {
      throw new CriuTsError('ENOIMAGE', `${name}: missing (${imageFile('IDS', t.pstree.pid)} files_id ${t.ids.files_id})`, { file: name, field: 'files_id' });
    }
    for (const fd of t.fds) {
      if (!img.files.has(fd.id)) bad(name, `fd ${fd.fd} id`, `file ${fd.id} is not in ${imageFile('FILES')}`);
    }
  }
  // Pages: what the pagemaps list is exactly what the pages files hold.
  const want = new Map<number, { pages: bigint; from: string }>();
  const add = (pagesId: number, n: bigint, from: string): void => {
    const w = want.get(pagesId);
    want.set(pagesId, { pages: (w?.pages ?? 0n) + n, from: w === undefined ? from : `${w.from}, ${from}` });
  };
  for (const t of img.tasks) add(t.pagesId, pagesInFile(t.pagemap), imageFile('PAGEMAP', t.pstree.pid));
  for (const name of readdirSync(dir)) {
    const shmid = imageIdOf('SHMEM_PAGEMAP', name);
    if (shmid === undefined || !ours(name)) continue;
    const [head, ...entries] = loadImage(dir, 'SHMEM_PAGEMAP', shmid).entries;
    add(head.pages_id, pagesInFile(entries), name);
  }
  for (const [pagesId, w] of want) {
    const file = imageFile('PAGES', pagesId);
    let size = 0n;
    try {
      size = BigInt(statSync(join(dir, file)).size);
    } catch {
      if (w.pages !== 0n) throw new CriuTsError('ENOIMAGE', `${file}: missing (${w.from} list ${w.pages} pages in it)`, { file, field: 'pages_id' });
      continue;
    }
    if (size !== w.pages * BigInt(PAGE_SIZE)) {
      bad(file, 'size', `${size} bytes, but ${w.from} list ${w.pages} pages (${w.pages * BigInt(PAGE_SIZE)} bytes) in it`);
    }
  }
}
