/**
 * Open POSIX message queues (kernel: a file of an mqueue filesystem, one
 * per ipc namespace; an mq_open fd or an open() of /dev/mqueue/NAME). CRIU
 * has no file type for them: criu-ts writes an EXT file_entry with its own
 * field (ext_file_entry.mqueue), so CRIU's restore stops asking for a
 * plugin and CRIU's crit skips the field.
 *
 * Dump, by where the queue lives (our copy of the fd tells: its st_dev is
 * the filesystem of one ipc namespace):
 * - unlinked: the queue lives only as long as its fds; saved whole with the
 *   first entry of it (attributes, owner, messages, read through a
 *   description of our own: kinds/ns/ipc-mqueue.ts), made again at restore
 *   in the task's ipc namespace (restoreUnlinked);
 * - a named queue of the tree's own ipc namespace: saved with the namespace
 *   (ipc kind), reopened by name at restore with the dumped flags;
 * - a named queue of criu-ts's own ipc namespace: not the tree's to take
 *   along, left in place like a file on disk and reopened by name (a
 *   restore where it is gone is refused in one line).
 *
 * Limits: a queue of another ipc namespace than its holder's and criu-ts's
 * (passed over a unix socket, or opened before a setns) is refused unless
 * unlinked; a notification registration (mq_notify) is refused
 * (ipc-mqueue.ts); --inherit-fd cannot name a queue.
 */
import { closeSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import type { CriuTsMqFile, FileEntry } from '../../images/messages.js';
import { NR, O_ACCMODE, randomBytesSync, O_CLOEXEC, O_NONBLOCK, O_RDWR, inNamespacesOf, mqReopen, mqUnlink } from '../../sys/index.js';
import { inOwnNs } from '../../proc/index.js';
import { stateKey, type DumpContext, type FdProbe, type FileKind, type RestoreContext, type RestoreTaskHandle } from '../types.js';
import { makeQueue, namespaceQueuesDev, readQueue } from '../ns/ipc-mqueue.js';
import { hostGid, hostUid, treeGid, treeUid } from '../ns/user.js';
import { DELETED_SUFFIX } from './ghost/index.js';
import { isMqueue } from './reg-file.js';
import { NO_FOWN } from './fown.js';

/** Where the queue of an entry lives (criu_ts_mq_file.where). */
const OURS = 0;
const TREE = 1;
const UNLINKED = 2;

/** st_dev of each holder ipc namespace's mqueue filesystem, by namespace link, for one dump. */
const DEVS = stateKey<Map<string, number>>('mqueue:devs');
/** The first entry of each unlinked queue (by st_dev:st_ino), for one dump. */
const SAVED = stateKey<Map<string, number>>('mqueue:saved');
/** criu-ts's read-write fd of each unlinked queue made again, by the entry holding its contents, for one restore. */
const MADE = stateKey<Map<number, number>>('mqueue:made');

/** The flags an fd keeps that mq_open takes again: access mode and O_NONBLOCK (every mq fd is close-on-exec; the core sets FD_CLOEXEC). */
const openFlags = (flags: number): number => flags & (O_ACCMODE | O_NONBLOCK);

function where(p: FdProbe, ctx: DumpContext, unlinked: boolean, what: string, name: string): number {
  if (unlinked) return UNLINKED;
  if (inOwnNs(p.pid, 'ipc') === true) return OURS;
  const link = `/proc/${p.pid}/ns/ipc`;
  const devs = ctx.memo(DEVS, () => new Map<string, number>());
  let dev = devs.get(link);
  if (dev === undefined) {
    dev = namespaceQueuesDev(p.pid);
    devs.set(link, dev);
  }
  if (p.stat.dev !== dev) {
    throw new CriuTsError('EUNSUPPORTED', `${what}: POSIX message queue ${name} belongs to another ipc namespace than its holder's: not supported`, { pid: p.pid, fd: p.fd });
  }
  return TREE;
}

function dumpMq(p: FdProbe, id: number, ctx: DumpContext): FileEntry {
  const what = `task ${p.pid} fd ${p.fd}`;
  const unlinked = p.link.endsWith(DELETED_SUFFIX) && p.stat.nlink === 0;
  const name = unlinked ? p.link.slice(0, -DELETED_SUFFIX.length) : p.link;
  const mq: CriuTsMqFile = { name: name.replace(/^\//, ''), flags: openFlags(p.fdinfo.flags), where: where(p, ctx, unlinked, what, name) };
  if (mq.where === UNLINKED) {
    // One queue, however many descriptions: saved with the first, the others point at it.
    const saved = ctx.memo(SAVED, () => new Map<string, number>());
    const key = `${p.stat.dev}:${p.stat.ino}`;
    const first = saved.get(key);
    mq.queue_file = first ?? id;
    if (first === undefined) {
      saved.set(key, id);
      // A description of our own (reopened through our copy): the task's file offset and flags stay untouched.
      const fd = mqReopen(p.localFd, O_RDWR);
      try {
        mq.queue = readQueue(fd, mq.name, what, (uid, gid) => ({ uid: treeUid(ctx, uid), gid: treeGid(ctx, gid) }));
      } finally {
        closeSync(fd);
      }
    }
  }
  return { type: 'EXT', id, ext: { id, fown: NO_FOWN, mqueue: mq } };
}

/**
 * An unlinked queue: made again once (by the first of its descriptions to
 * be restored) in the task's ipc namespace under a temporary name that is
 * removed at once; criu-ts keeps a read-write fd of it until every file is
 * in place, and each description is a new open of that fd with its dumped
 * flags, handed to the task.
 */
function restoreUnlinked(t: RestoreTaskHandle, mq: CriuTsMqFile, ctx: RestoreContext, what: string): number {
  const made = ctx.state(MADE, () => {
    const m = new Map<number, number>();
    ctx.afterAllFiles(() => {
      for (const fd of m.values()) closeSync(fd);
      m.clear();
    }, { alsoOnFailure: true });
    return m;
  });
  const key = mq.queue_file ?? -1;
  let full = made.get(key);
  if (full === undefined) {
    const q = ctx.fileById(key)?.ext?.mqueue?.queue;
    if (q === undefined) throw new CriuTsError('EIMAGE', `${what}: unlinked POSIX message queue /${mq.name}: file ${key} should hold its contents and does not`, { pid: t.pid });
    const uid = hostUid(ctx, q.uid);
    const gid = hostGid(ctx, q.gid);
    if (uid === undefined || gid === undefined) {
      throw new CriuTsError('EIMAGE', `${what}: POSIX message queue /${q.name}: its owner ${q.uid}:${q.gid} has no mapping in the tree's user namespace`, { name: q.name });
    }
    const temp = `criu-ts-${process.pid}-${randomBytesSync(6).toString('hex')}`;
    full = inNamespacesOf(t.pid, ['ipc'], () => {
      const fd = makeQueue(q, temp, uid, gid, what);
      mqUnlink(temp);
      return fd;
    });
    made.set(key, full);
  }
  const theirs = mqReopen(full, openFlags(mq.flags) | O_CLOEXEC);
  try {
    return t.installFd(theirs);
  } finally {
    closeSync(theirs);
  }
}

export const mqueueKind: FileKind = {
  name: 'mqueue',
  type: 'EXT',
  detect: (p: FdProbe) => p.link.startsWith('/') && p.stat.isFile() && isMqueue(p),
  dump: dumpMq,
  restore(t: RestoreTaskHandle, e: FileEntry, _fdi, ctx: RestoreContext): number {
    const what = `task ${t.vpid} file ${e.id}`;
    const mq = e.ext?.mqueue;
    if (mq === undefined) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: an external file (EXT) that only a CRIU plugin restores: not supported`, { pid: t.pid, id: e.id });
    }
    if (mq.where === UNLINKED) return restoreUnlinked(t, mq, ctx, what);
    // In the task: its own ipc namespace, where the tree's queues were made again with it.
    try {
      return Number(t.syscall(`mq_open(/${mq.name})`, NR.mq_open, t.putString(mq.name), openFlags(mq.flags), 0, 0));
    } catch (err) {
      const gone = mq.where === OURS ? ' (a queue of criu-ts\'s ipc namespace, left in place at dump: was it removed?)' : '';
      throw new CriuTsError('ERESTORE', `${what}: cannot open POSIX message queue /${mq.name}${gone}: ${(err as Error).message}`, { pid: t.pid, name: mq.name }, err);
    }
  },
};
