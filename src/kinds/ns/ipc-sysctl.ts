/**
 * The sysctls of an ipc namespace (ipc_var_entry in ipcns-var-<id>.img),
 * read and written through /proc/sys by a thread inside that namespace:
 * the kernel picks the namespace's own values by the caller's ipc
 * namespace. Names and fields follow CRIU; the mqueue ones exist only with
 * CONFIG_POSIX_MQUEUE, the *_next_id ones only with
 * CONFIG_CHECKPOINT_RESTORE (-1, "none asked for", is not saved).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { readSysctl } from '../../proc/index.js';
import { asThreadEuid } from '../../sys/index.js';
import { CriuTsError } from '../../errors.js';
import type { IpcVarEntry } from '../../images/messages.js';

const SYS = '/proc/sys';

function readNum(path: string): bigint {
  const text = readSysctl(path)?.trim();
  if (text === undefined || !/^-?\d+$/.test(text)) throw new CriuTsError('EDUMP', `${SYS}/${path}: ${text === undefined ? 'cannot be read' : `unexpected "${text}"`}`, { path });
  return BigInt(text);
}

/**
 * The user namespace owner's root (`asUid`, criu-ts's view) may write an
 * ipc namespace's sysctls, not the host's root: a namespace owned by a
 * user namespace of the tree's is written as that uid.
 */
function writeAs(path: string, value: string, asUid?: number): void {
  try {
    // The *_next_id files (mode 0444) are writable only by CAP_CHECKPOINT_RESTORE over the
    // namespace's owner, which criu-ts has and would drop with its uid: written as ourselves.
    if (asUid === undefined || path.endsWith('_next_id')) writeFileSync(`${SYS}/${path}`, value);
    else asThreadEuid(asUid, () => writeFileSync(`${SYS}/${path}`, value));
  } catch (e) {
    throw new CriuTsError('ERESTORE', `cannot set ${SYS}/${path} to ${value} in the restored ipc namespace: ${(e as Error).message}`, { path, value }, e);
  }
}

const u32 = (path: string): number => Number(readNum(path));

/** Read every ipc sysctl of the calling thread's ipc namespace. */
export function readIpcVar(): IpcVarEntry {
  const sem = (readSysctl('kernel/sem') ?? '').trim().split(/\s+/).map(Number);
  if (sem.length !== 4 || !sem.every(Number.isInteger)) throw new CriuTsError('EDUMP', `${SYS}/kernel/sem: cannot be read as four numbers`, {});
  const mq = existsSync(`${SYS}/fs/mqueue`);
  const e: IpcVarEntry = {
    sem_ctls: sem,
    msg_ctlmax: u32('kernel/msgmax'),
    msg_ctlmnb: u32('kernel/msgmnb'),
    msg_ctlmni: u32('kernel/msgmni'),
    auto_msgmni: u32('kernel/auto_msgmni'),
    shm_ctlmax: readNum('kernel/shmmax'),
    shm_ctlall: readNum('kernel/shmall'),
    shm_ctlmni: u32('kernel/shmmni'),
    shm_rmid_forced: u32('kernel/shm_rmid_forced'),
    mq_queues_max: mq ? u32('fs/mqueue/queues_max') : 0,
    mq_msg_max: mq ? u32('fs/mqueue/msg_max') : 0,
    mq_msgsize_max: mq ? u32('fs/mqueue/msgsize_max') : 0,
  };
  if (mq && existsSync(`${SYS}/fs/mqueue/msg_default`)) {
    e.mq_msg_default = u32('fs/mqueue/msg_default');
    e.mq_msgsize_default = u32('fs/mqueue/msgsize_default');
  }
  for (const k of ['msg', 'sem', 'shm'] as const) {
    const path = `kernel/${k}_next_id`;
    if (!existsSync(`${SYS}/${path}`)) continue;
    const v = readNum(path);
    if (v >= 0n) e[`${k}_next_id`] = Number(v);
  }
  return e;
}

/**
 * Write the sysctls back into the calling thread's ipc namespace: before
 * the objects (a queue's byte limit may exceed the default msgmnb, which
 * only CAP_SYS_RESOURCE may pass), and again once they exist, with the
 * *_next_id values (which creating an object with a chosen id uses up), so
 * that everything ends as dumped.
 */
export function writeIpcVar(e: IpcVarEntry, nextIds: boolean, asUid?: number): void {
  const write = (path: string, value: string): void => writeAs(path, value, asUid);
  if (e.sem_ctls !== undefined && e.sem_ctls.length > 0) write('kernel/sem', e.sem_ctls.join('\t'));
  write('kernel/msgmax', String(e.msg_ctlmax));
  write('kernel/msgmnb', String(e.msg_ctlmnb));
  write('kernel/msgmni', String(e.msg_ctlmni));
  write('kernel/auto_msgmni', String(e.auto_msgmni));
  write('kernel/shmmax', String(e.shm_ctlmax));
  write('kernel/shmall', String(e.shm_ctlall));
  write('kernel/shmmni', String(e.shm_ctlmni));
  write('kernel/shm_rmid_forced', String(e.shm_rmid_forced));
  if (existsSync(`${SYS}/fs/mqueue`)) {
    // Images from a kernel without mqueue carry zeros there: the kernel's defaults stay.
    if (e.mq_queues_max !== 0) write('fs/mqueue/queues_max', String(e.mq_queues_max));
    if (e.mq_msg_max !== 0) write('fs/mqueue/msg_max', String(e.mq_msg_max));
    if (e.mq_msgsize_max !== 0) write('fs/mqueue/msgsize_max', String(e.mq_msgsize_max));
    if (e.mq_msg_default !== undefined) write('fs/mqueue/msg_default', String(e.mq_msg_default));
    if (e.mq_msgsize_default !== undefined) write('fs/mqueue/msgsize_default', String(e.mq_msgsize_default));
  }
  if (!nextIds) return;
  for (const k of ['msg', 'sem', 'shm'] as const) {
    const v = e[`${k}_next_id`];
    if (v !== undefined) write(`kernel/${k}_next_id`, String(v));
  }
}

/** Ask the namespace to give the next object of `type` the id `id`. */
export function setNextId(type: 'msg' | 'sem' | 'shm', id: number, asUid?: number): void {
  writeAs(`kernel/${type}_next_id`, String(id), asUid);
}

/**
 * Raise kernel/<name> to at least `value` for what follows (an object made
 * under a limit lowered since); the final writeIpcVar puts it back.
 */
export function raiseAtLeast(name: 'msgmnb' | 'msgmax' | 'shmmax' | 'shmall', value: bigint, asUid?: number): void {
  if (readNum(`kernel/${name}`) < value) writeAs(`kernel/${name}`, String(value), asUid);
}

/** The same for fs/mqueue/<name> (queues made by criu-ts under limits lowered since). */
export function raiseMqAtLeast(name: 'queues_max' | 'msg_max' | 'msgsize_max', value: bigint, asUid?: number): void {
  if (readNum(`fs/mqueue/${name}`) < value) writeAs(`fs/mqueue/${name}`, String(value), asUid);
}
