/**
 * --link-remap at dump: a file whose name is gone while its inode is still
 * linked elsewhere (nlink > 0) gets a temporary hard link
 * `link_remap.<id>`, recorded as a REG entry the restore opens by name.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CriuTsError } from '../../../errors.js';
import type { RemapFilePathEntry } from '../../../images/messages.js';
import { linkOpenFile, isSyscallError } from '../../../sys/index.js';
import type { DumpContext } from '../../types.js';
import { logger } from '../../../log.js';
import { treePathsOf, closeTreeFds } from '../tree-paths.js';

const log = logger('ghost');

export function dumpLinkRemap(ctx: DumpContext, fileId: number, name: string, openPath: string, holder: number, what: string): void {
  let linkPath = '';
  const fds: number[] = [];
  let made = '';
  const lid = ctx.addFile((id) => {
    // Any unique name works: the restore finds it by file id. The parent may be gone too: go up.
    let dir = dirname(name);
    for (;;) {
      linkPath = join(dir, `link_remap.${id}`);
      try {
        // linkat never follows the new name; its directory is the task's (tree-paths.ts).
        made = treePathsOf(holder, fds).at(linkPath);
        linkOpenFile(openPath, made);
        break;
      } catch (e) {
        if (!isSyscallError(e) || e.errno !== 2 /* ENOENT */ || dir === '/') {
          closeTreeFds(fds);
          throw new CriuTsError('EDUMP', `${what}: cannot link ${name} as ${linkPath}: ${(e as Error).message}`, { id: fileId, name }, e);
        }
        dir = dirname(dir);
      }
    }
    return { type: 'REG', id, reg: { id, flags: 0, pos: 0n, fown: { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 }, name: linkPath } };
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
  log.debug(`${what}: ${name} linked as ${linkPath} (file ${lid})`);
}
