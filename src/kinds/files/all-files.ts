/**
 * Every file_entry of the dump being restored, for kinds whose objects span
 * several entries (the two ends of a pipe, the two sockets of a pair): the
 * restore context only answers by id, and a kind must find the partners of
 * an entry by their shared object (pipe_id, socket inode). Read once per
 * restore and kept in the context's shared map.
 */
import { join } from 'node:path';
import { readImage } from '../../images/index.js';
import type { FileEntry } from '../../images/messages.js';
import type { RestoreFilesContext } from '../types.js';

export function allFiles(ctx: RestoreFilesContext): readonly FileEntry[] {
  const key = 'all-files';
  let all = ctx.shared.get(key) as FileEntry[] | undefined;
  if (!all) {
    all = readImage(join(ctx.imagesDir, 'files.img')).entries as unknown as FileEntry[];
    ctx.shared.set(key, all);
  }
  return all;
}
