/**
 * --link-remap at dump: a file whose name is gone while its inode is still
 * linked elsewhere (nlink > 0) gets a temporary hard link
 * `link_remap.<id>`, recorded as a REG entry (with the mount it is on) the
 * restore opens by name. A hard link can be made only on the mount the
 * file was opened through (linkat says EXDEV across mounts, even of one
 * filesystem), so the link's directory is resolved in the mount namespace
 * that holds that mount, which need not be the holding task's (a file a
 * task inherited from its parent's namespace). On a filesystem of another
 * user namespace the link is made with the file's owner as fsuid/fsgid
 * (sys/fs-ids.ts).
 */
import { openSync, closeSync, fstatSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CriuTsError } from '../../../errors.js';
import type { RemapFilePathEntry } from '../../../images/messages.js';
import { linkOpenFile, isSyscallError, asMappedIfNeeded, O_PATH } from '../../../sys/index.js';
import type { DumpContext } from '../../types.js';
import { logger } from '../../../log.js';
import { treeMountHolder } from '../../ns/mnt/index.js';
import { treePathsOf, closeTreeFds } from '../tree-paths.js';
import { fdMountId } from '../../../proc/index.js';

const log = logger('ghost');

/** The mount `openPath` (a /proc magic link) reaches the file through, and the file's owner. */
function mountAndOwner(openPath: string): { mntId: number | undefined; uid: number; gid: number } {
  const fd = openSync(openPath, O_PATH);
  try {
    const st = fstatSync(fd);
    return { mntId: fdMountId(process.pid, fd), uid: st.uid, gid: st.gid };
  } finally {
    closeSync(fd);
  }
}

export function dumpLinkRemap(ctx: DumpContext, fileId: number, name: string, openPath: string, holder: number, what: string): void {
  let linkPath = '';
  const fds: number[] = [];
  let made = '';
  const file = mountAndOwner(openPath);
  const nsTask = (file.mntId === undefined ? undefined : treeMountHolder(ctx, file.mntId)) ?? holder;
  const lid = ctx.addFile((id) => {
    // Any unique name works: the restore finds it by file id. The parent may be gone too: go up.
    let dir = dirname(name);
    for (;;) {
      linkPath = join(dir, `link_remap.${id}`);
      try {
        // linkat never follows the new name; its directory is the mount namespace's (tree-paths.ts).
        made = treePathsOf(nsTask, fds).at(linkPath);
        asMappedIfNeeded(file.uid, file.gid, () => linkOpenFile(openPath, made));
        break;
      } catch (e) {
        if (!isSyscallError(e) || e.errno !== 2 /* ENOENT */ || dir === '/') {
          closeTreeFds(fds);
          throw new CriuTsError('EDUMP', `${what}: cannot link ${name} as ${linkPath}: ${(e as Error).message}`, { id: fileId, name }, e);
        }
        dir = dirname(dir);
      }
    }
    return {
      type: 'REG', id,
      reg: { id, flags: 0, pos: 0n, fown: { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 }, name: linkPath, ...(file.mntId === undefined ? {} : { mnt_id: file.mntId }) },
    };
  });
  // The link must outlive the dump only when the tasks are gone and a restore needs it.
  ctx.atExit((tasksLive) => {
    try {
      if (tasksLive) rmSync(made, { force: true });
    } finally {
      closeTreeFds(fds);
    }
  });
  const remap: RemapFilePathEntry = { orig_id: fileId, remap_id: lid, remap_type: 'LINKED' };
  ctx.emit('REMAP_FPATH', remap);
  log.debug(`${what}: ${name} linked as ${linkPath} (file ${lid}, mount ${file.mntId ?? '?'})`);
}
