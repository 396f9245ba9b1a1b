/** cwd, root, umask and the fd table of a restored task, against its fs and fdinfo images. */
import { readlinkSync } from 'node:fs';
import { listFds, readFdLink, parseFdinfo } from '../../proc/index.js';
import type { FileEntry } from '../../images/messages.js';
import type { DumpImages, TaskImages } from '../images.js';
import type { Collector } from './diff.js';

/**
 * The path a regular file entry names. A ghost or link-remapped file is
 * reopened through an fd criu-ts holds (/proc/<our pid>/fd/N): the path is
 * the one that fd has.
 */
function fileName(e: FileEntry | undefined): string | undefined {
  const name = e?.reg?.name;
  if (name === undefined || !name.startsWith(`/proc/${process.pid}/fd/`)) return name;
  try {
    return readlinkSync(name).replace(/ \(deleted\)$/, '');
  } catch {
    return name;
  }
}

export function verifyFs(pid: number, task: TaskImages, img: DumpImages, umask: number, c: Collector): void {
  const cwd = fileName(img.files.get(task.fs.cwd_id));
  const root = fileName(img.files.get(task.fs.root_id));
  const link = (what: string): string => readlinkSync(`/proc/${pid}/${what}`).replace(/ \(deleted\)$/, '');
  // The root is seen through our own root: a chrooted task's cwd link is relative to nothing we can compare; check the root.
  if (root !== undefined && link('root') !== root) c.add('root', root, link('root'));
  if (cwd !== undefined && (root === undefined || root === '/') && link('cwd') !== cwd) c.add('cwd', cwd, link('cwd'));
  if (task.fs.umask !== undefined && task.fs.umask !== umask) c.add('umask', `0${task.fs.umask.toString(8)}`, `0${umask.toString(8)}`);
}

/** How /proc/PID/fd/N reads for each kind of file. */
const LINK_PREFIX: Readonly<Partial<Record<FileEntry['type'], readonly string[]>>> = {
  PIPE: ['pipe:['],
  FIFO: ['/'],
  INETSK: ['socket:['],
  UNIXSK: ['socket:['],
  PACKETSK: ['socket:['],
  NETLINKSK: ['socket:['],
  EVENTFD: ['anon_inode:[eventfd]'],
  EVENTPOLL: ['anon_inode:[eventpoll]'],
  SIGNALFD: ['anon_inode:[signalfd]'],
  TIMERFD: ['anon_inode:[timerfd]'],
  INOTIFY: ['anon_inode:inotify'],
  FANOTIFY: ['anon_inode:[fanotify]'],
  MEMFD: ['/memfd:', '/dev/zero (deleted)'], // (also a shared anonymous object opened through map_files)
  PIDFD: ['anon_inode:[pidfd]', 'pidfd:'],
  TTY: ['/dev/'],
};

export function verifyFds(pid: number, task: TaskImages, img: DumpImages, c: Collector): void {
  const have = new Set(listFds(pid));
  const want = new Set(task.fds.map((f) => f.fd));
  for (const fd of have) if (!want.has(fd)) c.add(`fd ${fd}`, 'not open', readFdLink(pid, fd));
  for (const f of task.fds) {
    if (!have.has(f.fd)) {
      c.add(`fd ${f.fd}`, f.type, 'not open');
      continue;
    }
    const cloexecWant = ((f.flags ?? 0) & 1) !== 0;
    const cloexecHave = (parseFdinfo(pid, f.fd).flags & 0o2000000) !== 0;
    if (cloexecWant !== cloexecHave) c.add(`fd ${f.fd} close-on-exec`, cloexecWant, cloexecHave);
    const link = readFdLink(pid, f.fd);
    const e = img.files.get(f.id);
    if (f.type === 'REG') {
      const name = fileName(e);
      const got = link.replace(/ \(deleted\)$/, '');
      if (name !== undefined && got !== name) c.add(`fd ${f.fd} path`, name, link);
      continue;
    }
    const prefixes = LINK_PREFIX[f.type];
    if (prefixes && !prefixes.some((p) => link.startsWith(p))) c.add(`fd ${f.fd} kind`, f.type, link);
  }
}

