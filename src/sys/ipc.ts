/**
 * SysV IPC calls on the calling thread's ipc namespace (enter a task's with
 * inNamespacesOf first), and the x86_64 kernel structures they fill:
 * struct ipc64_perm, shmid64_ds, semid64_ds, msqid64_ds. On x86_64 the
 * syscalls always use the 64-bit layouts, with plain commands (no IPC_64).
 */
import { sys, sysTry, sysBig, addr } from './libc.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';
import { EINVAL } from './errno.js';

export const IPC_CREAT = 0o1000;
export const IPC_EXCL = 0o2000;
export const IPC_NOWAIT = 0o4000;
export const IPC_RMID = 0;
export const IPC_SET = 1;
export const IPC_STAT = 2;
export const SHM_RDONLY = 0o10000;
export const SHM_EXEC = 0o100000;
export const SHM_LOCK = 11;
/** shm_perm.mode bits the kernel keeps beside the permissions */
export const SHM_DEST = 0o1000;
export const SHM_LOCKED = 0o2000;
/** shmget: a segment of huge pages, their size as log2 << SHM_HUGE_SHIFT (0: the default size) */
export const SHM_HUGETLB = 0o4000;
export const SHM_HUGE_SHIFT = 26;
const MSG_COPY = 0o40000;
const SHM_STAT = 13;
const SHM_INFO = 14;
const MSG_STAT = 11;
const MSG_INFO = 12;
const SEM_STAT = 18;
const SEM_INFO = 19;
const GETALL = 13;
const SETALL = 17;

export interface IpcPerm {
  key: number;
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  mode: number;
}

export interface ShmStat { id: number; perm: IpcPerm; size: bigint; nattch: bigint; cpid: number }
export interface SemStat { id: number; perm: IpcPerm; nsems: number }
export interface MsgStat { id: number; perm: IpcPerm; cbytes: bigint; qnum: number; qbytes: number }

const DS_BYTES = 128; // every *id64_ds fits

function perm(b: Buffer): IpcPerm {
  return {
    key: b.readUInt32LE(0), uid: b.readUInt32LE(4), gid: b.readUInt32LE(8),
    cuid: b.readUInt32LE(12), cgid: b.readUInt32LE(16), mode: b.readUInt32LE(20),
  };
}

type IpcType = 'shm' | 'sem' | 'msg';

function ctl(type: IpcType, id: number, cmd: number, arg: bigint | number): number {
  switch (type) {
    case 'shm': return sysTry(NR.shmctl, id, cmd, arg);
    case 'sem': return sysTry(NR.semctl, id, 0, cmd, arg);
    case 'msg': return sysTry(NR.msgctl, id, cmd, arg);
  }
}

function check(what: string, r: number): number {
  if (r < 0) throw new SyscallError(what, -r);
  return r;
}

/**
 * Every object of one type in this ipc namespace: *_INFO gives the highest
 * slot in use, *_STAT on each slot its id and description (empty slots
 * answer EINVAL).
 */
function statAll(type: IpcType): { id: number; ds: Buffer }[] {
  const info = Buffer.alloc(256);
  const infoCmd = type === 'shm' ? SHM_INFO : type === 'sem' ? SEM_INFO : MSG_INFO;
  const statCmd = type === 'shm' ? SHM_STAT : type === 'sem' ? SEM_STAT : MSG_STAT;
  const maxIdx = check(`${type}ctl(INFO)`, ctl(type, 0, infoCmd, addr(info)));
  const out: { id: number; ds: Buffer }[] = [];
  for (let i = 0; i <= maxIdx; i++) {
    const ds = Buffer.alloc(DS_BYTES);
    const id = ctl(type, i, statCmd, addr(ds));
    if (id === -EINVAL) continue;
    out.push({ id: check(`${type}ctl(STAT ${i})`, id), ds });
  }
  return out;
}

export function listShm(): ShmStat[] {
  return statAll('shm').map(({ id, ds }) => ({
    id, perm: perm(ds), size: ds.readBigUInt64LE(48), cpid: ds.readInt32LE(80), nattch: ds.readBigUInt64LE(88),
  }));
}

export function listSem(): SemStat[] {
  return statAll('sem').map(({ id, ds }) => ({ id, perm: perm(ds), nsems: Number(ds.readBigUInt64LE(80)) }));
}

export function listMsg(): MsgStat[] {
  return statAll('msg').map(({ id, ds }) => ({
    id, perm: perm(ds), cbytes: ds.readBigUInt64LE(72), qnum: Number(ds.readBigUInt64LE(80)), qbytes: Number(ds.readBigUInt64LE(88)),
  }));
}

/** Every semaphore value of a set (GETALL). */
export function semGetAll(id: number, nsems: number): Buffer {
  const vals = Buffer.alloc(Math.max(2, 2 * nsems));
  check('semctl(GETALL)', ctl('sem', id, GETALL, addr(vals)));
  return vals.subarray(0, 2 * nsems);
}

export function semSetAll(id: number, values: Buffer): void {
  check('semctl(SETALL)', ctl('sem', id, SETALL, addr(values)));
}

/**
 * Message `index` of a queue, copied and left in place (msgrcv MSG_COPY,
 * needs CONFIG_CHECKPOINT_RESTORE). `max` bounds its size.
 */
export function msgCopy(id: number, index: number, max: number): { mtype: bigint; text: Buffer } {
  const buf = Buffer.alloc(8 + max);
  const n = sys('msgrcv(MSG_COPY)', NR.msgrcv, undefined, id, addr(buf), max, index, IPC_NOWAIT | MSG_COPY);
  return { mtype: buf.readBigInt64LE(0), text: Buffer.from(buf.subarray(8, 8 + n)) };
}

export function msgSend(id: number, mtype: bigint, text: Buffer): void {
  const buf = Buffer.alloc(8 + text.length);
  buf.writeBigInt64LE(mtype, 0);
  text.copy(buf, 8);
  sys('msgsnd', NR.msgsnd, undefined, id, addr(buf), text.length, IPC_NOWAIT);
}

export function shmGet(key: number, size: bigint, flags: number): number {
  return sys('shmget', NR.shmget, undefined, key, size, flags);
}

export function semGet(key: number, nsems: number, flags: number): number {
  return sys('semget', NR.semget, undefined, key, nsems, flags);
}

export function msgGet(key: number, flags: number): number {
  return sys('msgget', NR.msgget, undefined, key, flags);
}

/** Attach a segment into our own address space; returns its address. */
export function shmAttach(id: number, flags: number): bigint {
  return sysBig('shmat', NR.shmat, undefined, id, 0, flags);
}

export function shmDetach(at: bigint): void {
  sys('shmdt', NR.shmdt, undefined, at);
}

export function shmLock(id: number): void {
  check('shmctl(SHM_LOCK)', ctl('shm', id, SHM_LOCK, 0));
}

export function ipcRemove(type: IpcType, id: number): void {
  check(`${type}ctl(IPC_RMID)`, ctl(type, id, IPC_RMID, 0));
}

/**
 * Owner and permissions of an object (IPC_STAT, then IPC_SET of uid, gid
 * and the permission bits; for a queue also its byte limit).
 */
export function ipcSetOwner(type: IpcType, id: number, p: { uid: number; gid: number; mode: number }, qbytes?: number): void {
  const ds = Buffer.alloc(DS_BYTES);
  check(`${type}ctl(IPC_STAT)`, ctl(type, id, IPC_STAT, addr(ds)));
  ds.writeUInt32LE(p.uid, 4);
  ds.writeUInt32LE(p.gid, 8);
  ds.writeUInt32LE(p.mode & 0o777, 20);
  if (type === 'msg' && qbytes !== undefined) ds.writeBigUInt64LE(BigInt(qbytes), 88);
  check(`${type}ctl(IPC_SET)`, ctl(type, id, IPC_SET, addr(ds)));
}
