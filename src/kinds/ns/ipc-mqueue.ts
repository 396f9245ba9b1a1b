/**
 * POSIX message queues (kernel: the mqueue filesystem, one instance per
 * ipc namespace; a queue is an inode there with its messages kept by
 * priority, oldest first within one). CRIU saves none; criu-ts saves
 * every queue of a dumped ipc namespace (ipc_var_entry.mqueues, our field
 * 1000) and every queue a task holds open (kinds/files/mqueue.ts).
 *
 * Reading a queue: the kernel has no way to look at a message and leave
 * it, so each message is received and, once all are read, sent back in the
 * order received with its priority: the queue ends as it was, same order
 * within each priority. Only queues no task outside the frozen tree can
 * reach are read this way (the tree's own namespace's, unlinked ones); a
 * named queue of criu-ts's own namespace is left in place like a file on
 * disk. The receiving and sending back is done by a keeper process of ours
 * that outlives criu-ts (mqueue-keeper.ts): a SIGKILL of criu-ts at any
 * point loses no message.
 *
 * Limits, refused with one line: a queue with a notification registered
 * (mq_notify: its target and sigevent cannot be read back); a queue of
 * another ipc namespace than its holder's and than criu-ts's.
 */
import { closeSync, fchmodSync, fchownSync, fstatSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import type { CriuTsMqueue } from '../../images/messages.js';
import {
  O_CREAT, O_EXCL, O_RDWR, inNamespacesOf, mqGetattr, mqOpen, mqSend, mqStatus, mqUnlink, mqueueMount, mqueueNames, mqOpenIn, type MqMessage,
} from '../../sys/index.js';
import { receiveKept } from './mqueue-keeper.js';

/**
 * Everything of the queue open at `fd` (a description no task outside the
 * frozen tree uses): attributes, owner as `owner` maps it, and its
 * messages, received and sent back. `what` names it in errors.
 */
export function readQueue(fd: number, name: string, what: string, owner: (uid: number, gid: number) => { uid: number; gid: number }): CriuTsMqueue {
  const st = mqStatus(fd);
  if (st.notifyPid !== 0) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: POSIX message queue /${name} has a notification registered (mq_notify, for pid ${st.notifyPid}): not supported`, { name });
  }
  const attr = mqGetattr(fd);
  const s = fstatSync(fd);
  // Received and sent back in order (the same order within each priority) by
  // a keeper process that outlives us: none lost if criu-ts dies meanwhile.
  const messages: MqMessage[] = attr.curmsgs === 0 ? [] : receiveKept(fd, attr.msgsize, `${what}: POSIX message queue /${name}`);
  if (messages.length !== attr.curmsgs) {
    throw new CriuTsError('EDUMP', `${what}: POSIX message queue /${name} held ${attr.curmsgs} message(s) and ${messages.length} could be read: something outside the tree uses it`, { name });
  }
  const o = owner(s.uid, s.gid);
  return {
    name, mode: s.mode & 0o7777, uid: o.uid, gid: o.gid,
    maxmsg: BigInt(attr.maxmsg), msgsize: BigInt(attr.msgsize),
    messages: messages.map((m) => ({ prio: m.prio, data: m.data })),
  };
}

/** Every queue of task `pid`'s ipc namespace, read as readQueue does. */
export function readNamespaceQueues(pid: number, what: string, owner: (uid: number, gid: number) => { uid: number; gid: number }): CriuTsMqueue[] {
  return inNamespacesOf(pid, ['ipc'], () => {
    const mnt = mqueueMount();
    try {
      const out: CriuTsMqueue[] = [];
      for (const name of mqueueNames(mnt)) {
        const fd = mqOpenIn(mnt, name, O_RDWR);
        try {
          out.push(readQueue(fd, name, what, owner));
        } finally {
          closeSync(fd);
        }
      }
      return out;
    } finally {
      closeSync(mnt);
    }
  });
}

/** st_dev of the mqueue filesystem of task `pid`'s ipc namespace. */
export function namespaceQueuesDev(pid: number): number {
  return inNamespacesOf(pid, ['ipc'], () => {
    const mnt = mqueueMount();
    try {
      return fstatSync(mnt).dev;
    } finally {
      closeSync(mnt);
    }
  });
}

/**
 * Make queue `q` in the calling thread's ipc namespace under `name` and
 * fill it; its owner is `uid`:`gid` (criu-ts's view). Returns an O_RDWR fd
 * on it, which the caller closes. A queue of that name already there is
 * an error (EEXIST), never reused.
 */
export function makeQueue(q: CriuTsMqueue, name: string, uid: number, gid: number, what: string): number {
  let fd: number;
  try {
    fd = mqOpen(name, O_CREAT | O_EXCL | O_RDWR, 0o600, { maxmsg: Number(q.maxmsg), msgsize: Number(q.msgsize) });
  } catch (e) {
    throw new CriuTsError('ERESTORE', `${what}: cannot make POSIX message queue /${q.name} (${q.maxmsg} messages of ${q.msgsize} bytes): ${(e as Error).message}`, { name: q.name }, e);
  }
  try {
    for (const m of q.messages ?? []) mqSend(fd, { prio: m.prio, data: m.data });
    fchownSync(fd, uid, gid);
    fchmodSync(fd, q.mode & 0o7777);
    return fd;
  } catch (e) {
    closeSync(fd);
    try {
      mqUnlink(name);
    } catch {
      // already gone
    }
    throw new CriuTsError('ERESTORE', `${what}: cannot fill POSIX message queue /${q.name}: ${(e as Error).message}`, { name: q.name }, e);
  }
}
