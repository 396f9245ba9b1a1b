/**
 * Dump of one ipc namespace's SysV objects, read by our thread stepped
 * into it (the caller wraps this in inNamespacesOf): nothing is consumed
 * or changed. Segments are attached read-only into criu-ts for their
 * pages, semaphores read with GETALL, queued messages copied in place with
 * msgrcv(MSG_COPY).
 *
 * Images, as CRIU 4.2 writes them: ipcns-shm-<ns>.img (in_pagemaps: the
 * pages of segment N go to pagemap-shmem-N.img + pages-M.img, holes
 * skipped), ipcns-sem-<ns>.img (values after each entry), ipcns-msg-<ns>.img
 * (each message after its queue's entry).
 */
import { statfsSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { encodeMessage } from '../../images/index.js';
import type { IpcDescEntry, IpcMsgEntry, IpcSemEntry, IpcShmEntry, PagemapEntry } from '../../images/messages.js';
import {
  PAGE_SIZE, HUGETLBFS_MAGIC, SHM_HUGETLB, SHM_HUGE_SHIFT, SHM_RDONLY, listMsg, listSem, listShm, msgCopy, semGetAll, shmAttach, shmDetach, type IpcPerm,
} from '../../sys/index.js';
import { dataRanges } from '../memory/shmem-dump.js';
import { hugetlbDataRanges } from '../memory/hugetlb.js';
import { PagesWriter } from '../memory/pages-writer.js';
import { PE_PRESENT } from '../../images/flags.js';
import type { DumpContext } from '../types.js';
import { treeGid, treeUid } from './user.js';


/** Owners as the tree sees them (CRIU's images: through the tree's user namespace, if it has one). */
function desc(ctx: DumpContext, id: number, p: IpcPerm): IpcDescEntry {
  return { key: p.key, uid: treeUid(ctx, p.uid), gid: treeGid(ctx, p.gid), cuid: treeUid(ctx, p.cuid), cgid: treeGid(ctx, p.cgid), mode: p.mode, id };
}

function pad(b: Buffer, to: number): Buffer {
  const n = Math.ceil(b.length / to) * to;
  return n === b.length ? b : Buffer.concat([b, Buffer.alloc(n - b.length)]);
}

export interface IpcObjectsDump {
  shm: IpcShmEntry[];
  /** pagemap-shmem images to write: segment id, pages id, entries (offsets in the segment) */
  shmPages: { id: number; pagesId: number; entries: PagemapEntry[]; hugePage: number | undefined }[];
  sem: { entry: IpcSemEntry; values: Buffer }[];
  msg: { entry: IpcMsgEntry; payload: Buffer }[];
}

/** Read every SysV object of the calling thread's ipc namespace (`who` names the tree's root in errors). */
export function readIpcObjects(ctx: DumpContext, who: string): IpcObjectsDump {
  const out: IpcObjectsDump = { shm: [], shmPages: [], sem: [], msg: [] };
  for (const s of listShm()) {
    const pages = dumpSegmentPages(ctx, s.id, s.size, who);
    const e: IpcShmEntry = { desc: desc(ctx, s.id, s.perm), size: s.size, in_pagemaps: true };
    if (pages.hugePage !== undefined) e.hugetlb_flag = SHM_HUGETLB | (Math.round(Math.log2(pages.hugePage)) << SHM_HUGE_SHIFT);
    out.shm.push(e);
    out.shmPages.push(pages);
  }
  for (const s of listSem()) {
    out.sem.push({ entry: { desc: desc(ctx, s.id, s.perm), nsems: s.nsems }, values: pad(semGetAll(s.id, s.nsems), 8) });
  }
  for (const q of listMsg()) {
    const parts: Buffer[] = [];
    // No message is longer than all the queue's bytes together.
    const max = Math.max(1, Number(q.cbytes));
    for (let i = 0; i < q.qnum; i++) {
      const m = msgCopy(q.id, i, max);
      const head = encodeMessage('ipc_msg', { mtype: m.mtype, msize: m.text.length });
      const size = Buffer.alloc(4);
      size.writeUInt32LE(head.length, 0);
      parts.push(size, head, pad(m.text, 8));
    }
    out.msg.push({ entry: { desc: desc(ctx, q.id, q.perm), qbytes: q.qbytes, qnum: q.qnum }, payload: Buffer.concat(parts) });
  }
  return out;
}

/**
 * The pages of one segment: attached read-only into criu-ts, which pages
 * hold data asked of the segment itself (SEEK_DATA/SEEK_HOLE, swapped
 * pages included, holes never faulted in), read with process_vm_readv on
 * ourselves.
 */
function dumpSegmentPages(ctx: DumpContext, id: number, size: bigint, who: string): IpcObjectsDump['shmPages'][number] {
  const at = shmAttach(id, SHM_RDONLY);
  const page = BigInt(PAGE_SIZE);
  const len = ((size + page - 1n) / page) * page;
  try {
    const path = `/proc/self/map_files/${at.toString(16)}-${(at + len).toString(16)}`;
    // A hugetlb segment (SHM_HUGETLB): its huge pages that hold data, read without allocating any.
    const fs = statfsSync(path);
    const hugePage = fs.type === HUGETLBFS_MAGIC ? fs.bsize : undefined;
    const pagesId = ctx.nextPagesId();
    const w = new PagesWriter(ctx.dir, pagesId, process.pid, undefined, Number(len));
    try {
      const ranges = hugePage === undefined ? dataRanges(path, 0n, len) : hugetlbDataRanges(path, 0n, len, hugePage, () => false);
      if (ranges === undefined) throw new CriuTsError('EDUMP', `${who}: cannot find the pages of SysV shm segment ${id} (${path})`, { id });
      for (const [from, to] of ranges) {
        w.breakRun();
        w.add(at + from, Number((to - from) / page), PE_PRESENT, false);
      }
      for (const e of w.entries) e.vaddr -= at;
    } finally {
      w.close();
    }
    for (const e of w.entries) ctx.countSharedPages(Number(e.nr_pages ?? 0n));
    return { id, pagesId, entries: w.entries, hugePage };
  } finally {
    shmDetach(at);
  }
}

