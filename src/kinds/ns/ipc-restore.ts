/**
 * Re-creating one ipc namespace's SysV objects inside it (the caller wraps
 * this in inNamespacesOf on the new namespace): each object with its
 * dumped id (the namespace's *_next_id sysctl, then *get with
 * IPC_CREAT|IPC_EXCL), key, owner, permissions and contents; then the
 * namespace's sysctls. Creator ids (cuid/cgid) and the creator and
 * last-user pids become criu-ts's, as with CRIU; times are the restore's.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { decodeMessage, imageFile, imagePath, type EntryOf } from '../../images/index.js';
import type { IpcDescEntry, IpcMsg, IpcMsgEntry, IpcSemEntry, IpcShmEntry, IpcVarEntry } from '../../images/messages.js';
import {
  IPC_CREAT, IPC_EXCL, PAGE_SIZE, SHM_HUGETLB, SHM_HUGE_SHIFT, SHM_LOCKED, processVmWritev, ipcSetOwner, msgGet, msgSend, semGet, semSetAll, shmAttach, shmDetach, shmGet, shmLock,
} from '../../sys/index.js';
import type { RestoreContext } from '../types.js';
import { raiseAtLeast as raise, raiseMqAtLeast, setNextId, writeIpcVar } from './ipc-sysctl.js';
import { makeQueue } from './ipc-mqueue.js';
import { hostGid, hostUid, namespaceRootUid } from './user.js';

export interface IpcImages {
  nsId: number;
  var: IpcVarEntry;
  shm: { entry: IpcShmEntry; payload: Buffer | undefined }[];
  sem: { entry: IpcSemEntry; payload: Buffer | undefined }[];
  msg: { entry: IpcMsgEntry; payload: Buffer | undefined }[];
}

/** Load ipcns-*-<nsId>.img (var is required; an absent object image means no objects of that type). */
export function loadIpcImages(ctx: RestoreContext, nsId: number): IpcImages {
  const v = ctx.image('IPC_VAR', nsId)?.entries[0];
  if (v === undefined) {
    const file = imageFile('IPC_VAR', nsId);
    throw new CriuTsError('EIMAGE', `${file} is missing or empty: the tree's ipc namespace cannot be re-created`, { file });
  }
  const objects = <K extends 'IPCNS_SHM' | 'IPCNS_SEM' | 'IPCNS_MSG'>(key: K): { entry: EntryOf<K>; payload: Buffer | undefined }[] => {
    const img = ctx.image(key, nsId);
    return (img?.entries ?? []).map((entry, i) => ({ entry, payload: img?.extras[i] }));
  };
  return { nsId, var: v, shm: objects('IPCNS_SHM'), sem: objects('IPCNS_SEM'), msg: objects('IPCNS_MSG') };
}

/** Create an object of `type` with exactly the dumped id. */
function createWithId(type: 'shm' | 'sem' | 'msg', id: number, create: () => number, asUid: number | undefined): void {
  setNextId(type, id, asUid);
  const got = create();
  if (got !== id) throw new CriuTsError('ERESTORE', `SysV ${type} ${id} came back as ${got}`, { type, id, got });
}

const FLAGS = (mode: number): number => (mode & 0o777) | IPC_CREAT | IPC_EXCL;

/** Re-create every object, then the sysctls, in the calling thread's ipc namespace. */
export function restoreIpcObjects(img: IpcImages, ctx: RestoreContext): void {
  // In a user namespace of the tree's, its root owns the sysctls, and the images hold owners as it saw them.
  const asUid = namespaceRootUid(ctx);
  const owner = (type: string, d: IpcDescEntry): IpcDescEntry => {
    const uid = hostUid(ctx, d.uid);
    const gid = hostGid(ctx, d.gid);
    if (uid === undefined || gid === undefined) {
      throw new CriuTsError('EIMAGE', `SysV ${type} ${d.id}: its owner ${d.uid}:${d.gid} has no mapping in the tree's user namespace`, { type, id: d.id });
    }
    return { ...d, uid, gid };
  };
  const raiseAtLeast = (name: 'msgmnb' | 'msgmax' | 'shmmax' | 'shmall', value: bigint): void => raise(name, value, asUid);
  writeIpcVar(img.var, false, asUid);
  let shmPages = 0n;
  for (const { entry: s, payload } of img.shm) {
    const d = s.desc;
    // A hugetlb segment needs free huge pages of its size here (shmget fails with ENOMEM otherwise).
    const huge = (s.hugetlb_flag ?? 0) & (SHM_HUGETLB | (0x3f << SHM_HUGE_SHIFT));
    // Made under limits that may have been lowered since.
    raiseAtLeast('shmmax', s.size);
    raiseAtLeast('shmall', shmPages += (s.size + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE));
    createWithId('shm', d.id, () => shmGet(d.key, s.size, FLAGS(d.mode) | huge), asUid);
    ipcSetOwner('shm', d.id, owner('shm', d));
    fillSegment(ctx, s, payload);
    if (d.mode & SHM_LOCKED) shmLock(d.id);
  }
  for (const { entry: s, payload } of img.sem) {
    const d = s.desc;
    const values = payload?.subarray(0, 2 * s.nsems);
    if (values === undefined || values.length !== 2 * s.nsems) {
      throw new CriuTsError('EIMAGE', `${imageFile('IPCNS_SEM', img.nsId)}: semaphore set ${d.id} has no values`, { id: d.id });
    }
    createWithId('sem', d.id, () => semGet(d.key, s.nsems, FLAGS(d.mode)), asUid);
    ipcSetOwner('sem', d.id, owner('sem', d));
    semSetAll(d.id, Buffer.from(values));
  }
  for (const { entry: q, payload } of img.msg) {
    const d = q.desc;
    const msgs = splitMessages(payload ?? Buffer.alloc(0), img.nsId, d.id);
    if (msgs.length !== q.qnum) {
      throw new CriuTsError('EIMAGE', `${imageFile('IPCNS_MSG', img.nsId)}: queue ${d.id} has ${msgs.length} messages, its entry says ${q.qnum}`, { id: d.id });
    }
    createWithId('msg', d.id, () => msgGet(d.key, FLAGS(d.mode)), asUid);
    // The messages went in under limits that may have been lowered since: room for them first, then the dumped limit.
    const total = msgs.reduce((n, m) => n + m.text.length, 0);
    const room = Math.max(q.qbytes, total);
    raiseAtLeast('msgmnb', BigInt(room));
    raiseAtLeast('msgmax', BigInt(msgs.reduce((n, m) => Math.max(n, m.text.length), 0)));
    ipcSetOwner('msg', d.id, owner('msg', d), room);
    for (const m of msgs) msgSend(d.id, m.mtype, m.text);
    if (room !== q.qbytes) ipcSetOwner('msg', d.id, owner('msg', d), q.qbytes);
  }
  restoreQueues(img, ctx, asUid);
  writeIpcVar(img.var, true, asUid);
}

/**
 * The namespace's POSIX message queues (criu-ts's field in ipc_var_entry),
 * made under limits raised as far as each needs (a queue may have been made
 * before they were lowered, or by a task with CAP_SYS_RESOURCE); the final
 * writeIpcVar puts the dumped limits back.
 */
function restoreQueues(img: IpcImages, ctx: RestoreContext, asUid: number | undefined): void {
  const queues = img.var.mqueues ?? [];
  if (queues.length === 0) return;
  raiseMqAtLeast('queues_max', BigInt(queues.length), asUid);
  for (const q of queues) {
    raiseMqAtLeast('msg_max', q.maxmsg, asUid);
    raiseMqAtLeast('msgsize_max', q.msgsize, asUid);
    const uid = hostUid(ctx, q.uid);
    const gid = hostGid(ctx, q.gid);
    if (uid === undefined || gid === undefined) {
      throw new CriuTsError('EIMAGE', `POSIX message queue /${q.name}: its owner ${q.uid}:${q.gid} has no mapping in the tree's user namespace`, { name: q.name });
    }
    closeSync(makeQueue(q, q.name, uid, gid, `ipc namespace ${img.nsId}`));
  }
}

function splitMessages(buf: Buffer, nsId: number, id: number): { mtype: bigint; text: Buffer }[] {
  const out: { mtype: bigint; text: Buffer }[] = [];
  let pos = 0;
  while (pos + 4 <= buf.length) {
    const size = buf.readUInt32LE(pos);
    const m = decodeMessage('ipc_msg', buf.subarray(pos + 4, pos + 4 + size)) as unknown as IpcMsg;
    const start = pos + 4 + size;
    if (start + m.msize > buf.length) throw new CriuTsError('EIMAGE', `${imageFile('IPCNS_MSG', nsId)}: a message of queue ${id} is cut short`, { id });
    out.push({ mtype: m.mtype, text: Buffer.from(buf.subarray(start, start + m.msize)) });
    pos = start + Math.ceil(m.msize / 8) * 8;
  }
  return out;
}

const COPY_CHUNK = 1 << 20;

/**
 * The contents of a new segment, written into it attached in criu-ts. From
 * pagemap-shmem-<id>.img + pages-N.img (in_pagemaps, CRIU 4.x), or from the
 * bytes after the entry (older CRIU).
 */
function fillSegment(ctx: RestoreContext, s: IpcShmEntry, payload: Buffer | undefined): void {
  const id = s.desc.id;
  const page = BigInt(PAGE_SIZE);
  const len = ((s.size + page - 1n) / page) * page;
  let runs: { fileOff: bigint; segOff: bigint; len: bigint }[] = [];
  let pagesPath: string | undefined;
  const name = imageFile('SHMEM_PAGEMAP', id);
  if (s.in_pagemaps === true) {
    const img = ctx.image('SHMEM_PAGEMAP', id);
    if (img === undefined) return; // no page of it was ever touched
    const [head, ...entries] = img.entries;
    pagesPath = imagePath(ctx.dir, 'PAGES', head.pages_id);
    let fileOff = 0n;
    for (const e of entries) {
      const n = (e.nr_pages !== undefined && e.nr_pages !== 0n ? e.nr_pages : BigInt(e.compat_nr_pages)) * page;
      if ((e.flags ?? 0) & 1 /* PE_PARENT */) throw new CriuTsError('EIMAGE', `${name}: pages in parent images are not expected for a SysV segment`, { file: name });
      if (e.vaddr + n > len) throw new CriuTsError('EIMAGE', `${name}: pages past the end of segment ${id}`, { file: name });
      runs.push({ fileOff, segOff: e.vaddr, len: n });
      fileOff += n;
    }
  } else if (payload !== undefined) {
    runs = [{ fileOff: 0n, segOff: 0n, len: s.size }];
  }
  if (runs.length === 0) return;
  const at = shmAttach(id, 0);
  try {
    const src = pagesPath === undefined ? undefined : openSync(pagesPath, 'r');
    try {
      const buf = Buffer.allocUnsafe(COPY_CHUNK);
      for (const r of runs) {
        for (let done = 0n; done < r.len;) {
          const n = Number(r.len - done < BigInt(COPY_CHUNK) ? r.len - done : BigInt(COPY_CHUNK));
          let chunk: Buffer;
          if (src === undefined) {
            chunk = (payload as Buffer).subarray(Number(done), Number(done) + n);
          } else {
            const got = readSync(src, buf, 0, n, Number(r.fileOff + done));
            if (got !== n) throw new CriuTsError('EIMAGE', `${pagesPath}: ends before ${name} says`, { file: pagesPath });
            chunk = buf.subarray(0, n);
          }
          // Through our attachment, as a task would write it: whole pages, the tail past the size included.
          const wrote = processVmWritev(process.pid, chunk, 0, [{ addr: at + r.segOff + done, len: chunk.length }]);
          if (wrote !== chunk.length) throw new CriuTsError('ERESTORE', `SysV shm segment ${id}: wrote ${wrote} of ${chunk.length} bytes`, { id });
          done += BigInt(n);
        }
      }
    } finally {
      if (src !== undefined) closeSync(src);
    }
  } finally {
    shmDetach(at);
  }
}
