/**
 * Ghost files: regular files unlinked while still open or mapped. The name
 * is gone, so the contents travel in the images: ghost-file-<id>.img holds a
 * ghost_file_entry (owner, mode, times, size) followed by the bytes, and
 * remap-fpath.img says which file entry is backed by which ghost (CRIU's
 * GHOST remap). At restore the ghost is written back next to where the file
 * was, opened and mapped by everyone who had it, and unlinked again once
 * the restore is over, so the restored tasks hold an unlinked file again.
 *
 * Known limits: files larger than --ghost-limit (default 1 MiB, as CRIU) are
 * refused; contents are written whole (no sparse chunks); a file unlinked
 * but still linked elsewhere (nlink > 0) is treated as a ghost too.
 */
import { openSync, fstatSync, readSync, closeSync, writeFileSync, chownSync, utimesSync, existsSync, mkdirSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { CriuTsError } from '../../errors.js';
import { writeImage, readImage } from '../../images/index.js';
import type { GhostFileEntry, RemapFilePathEntry, FileEntry } from '../../images/messages.js';
import { emitExtra, dumpScope } from './dump-extras.js';
import { logger } from '../../log.js';

const log = logger('ghost');

export const DELETED_SUFFIX = ' (deleted)';

/** Copy the unlinked file reachable at `openPath` (a /proc fd or map_files link) into the images as the ghost of file `id`. */
export function dumpGhost(id: number, name: string, openPath: string, ghostLimit: number, what: string): void {
  const sc = dumpScope();
  if (!sc) throw new CriuTsError('EINTERNAL', 'ghost file outside a dump', { id });
  const fd = openSync(openPath, 'r');
  try {
    const st = fstatSync(fd, { bigint: true });
    if (st.isDirectory()) {
      // A removed directory (e.g. a deleted cwd): nothing to copy, only its mode and owner.
      const g: GhostFileEntry = { uid: Number(st.uid), gid: Number(st.gid), mode: Number(st.mode), dev: Number(st.dev), ino: st.ino };
      writeImage(join(sc.dir, `ghost-file-${id.toString(16)}.img`), 'GHOST_FILE', [g as unknown as Record<string, unknown>], [Buffer.alloc(0)]);
      emitExtra('REMAP_FPATH', { orig_id: id, remap_id: id, remap_type: 'GHOST' }, Buffer.alloc(0));
      return;
    }
    if (!st.isFile()) throw new CriuTsError('EUNSUPPORTED', `${what}: ${name} is unlinked and not a regular file`, { id, name });
    if (st.size > BigInt(ghostLimit)) {
      throw new CriuTsError('EUNSUPPORTED', `${what}: unlinked file ${name} is ${st.size} bytes, more than --ghost-limit ${ghostLimit}`, { id, name, size: st.size });
    }
    const data = Buffer.alloc(Number(st.size));
    let off = 0;
    while (off < data.length) {
      const n = readSync(fd, data, off, data.length - off, off);
      if (n <= 0) break;
      off += n;
    }
    const g: GhostFileEntry = {
      uid: Number(st.uid), gid: Number(st.gid), mode: Number(st.mode), dev: Number(st.dev), ino: st.ino,
      atim: { tv_sec: st.atimeMs / 1000n, tv_usec: (st.atimeNs / 1000n) % 1000000n },
      mtim: { tv_sec: st.mtimeMs / 1000n, tv_usec: (st.mtimeNs / 1000n) % 1000000n },
      chunks: false,
      size: st.size,
    };
    writeImage(join(sc.dir, `ghost-file-${id.toString(16)}.img`), 'GHOST_FILE', [g as unknown as Record<string, unknown>], [data]);
    const remap: RemapFilePathEntry = { orig_id: id, remap_id: id, remap_type: 'GHOST' };
    emitExtra('REMAP_FPATH', remap, Buffer.alloc(0));
    log.debug(`${what}: ghost ${name} (${data.length} bytes) as ghost-file-${id.toString(16)}.img`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Before a restore: write every ghost back under a temporary name next to
 * its original path and point its file entries there. Returns the paths to
 * unlink when the restore is over (whatever its outcome).
 */
export function materializeGhosts(imagesDir: string, files: Map<number, FileEntry>): string[] {
  const remapPath = join(imagesDir, 'remap-fpath.img');
  if (!existsSync(remapPath)) return [];
  const created: string[] = [];
  try {
    for (const r of readImage(remapPath).entries as unknown as RemapFilePathEntry[]) {
      if (r.remap_type !== 'GHOST' && r.remap_type !== 1) continue;
      const f = files.get(r.orig_id);
      if (!f?.reg) continue;
      const img = readImage(join(imagesDir, `ghost-file-${r.remap_id.toString(16)}.img`));
      const g = img.entries[0] as unknown as GhostFileEntry | undefined;
      if (!g) throw new CriuTsError('EIMAGE', `ghost-file-${r.remap_id.toString(16)}.img is empty`, { id: r.remap_id });
      const path = join(dirname(f.reg.name), `.${basename(f.reg.name)}.criu-ts-ghost.${r.remap_id}`);
      if ((g.mode & 0o170000) === 0o040000) mkdirSync(path, { mode: g.mode & 0o7777 });
      else writeFileSync(path, img.extras[0] ?? Buffer.alloc(0), { mode: g.mode & 0o7777 });
      created.push(path);
      try {
        chownSync(path, g.uid, g.gid);
        if (g.atim && g.mtim) utimesSync(path, Number(g.atim.tv_sec), Number(g.mtim.tv_sec));
      } catch {
        // ownership and times are best effort
      }
      f.reg.name = path;
    }
  } catch (e) {
    removeGhosts(created);
    throw e;
  }
  return created;
}

export function removeGhosts(paths: readonly string[]): void {
  for (const p of paths) {
    try {
      rmSync(p, { recursive: false, force: true });
    } catch {
      try {
        rmdirSync(p);
      } catch {
        // already gone, or a directory the task filled meanwhile
      }
    }
  }
}
