/**
 * The kinds for special files (anon-inode objects, memfd, ttys, regular
 * files holding locks), in the order the registry must ask them: before
 * REG, since a memfd, a pty or a locked file is also a path-named file that
 * REG would otherwise take.
 */
import type { FileKind } from '../types.js';
import { eventfdKind } from './eventfd.js';
import { epollKind } from './epoll.js';
import { timerfdKind } from './timerfd.js';
import { signalfdKind } from './signalfd.js';
import { inotifyKind } from './inotify.js';
import { fanotifyKind } from './fanotify.js';
import { memfdKind } from './memfd.js';
import { ttyKind } from './tty/tty.js';
import { lockedRegKind } from './file-locks.js';
import { pidfdKind } from './pidfd.js';
import { nsFileKind } from './ns-file.js';
import { tunFileKind } from './tun-file.js';

export const SPECIAL_FILE_KINDS: readonly FileKind[] = [
  eventfdKind, epollKind, timerfdKind, signalfdKind, inotifyKind, fanotifyKind, memfdKind, ttyKind, tunFileKind, lockedRegKind, pidfdKind, nsFileKind,
];
