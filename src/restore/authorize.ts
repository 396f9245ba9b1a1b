/**
 * A restore for an unprivileged caller (RPC service; docs/security.md):
 * the caller gets back only what it could have made itself. Checked on the
 * images before anything is created:
 *
 * - every thread's credentials are the caller's (uid, euid, suid, fsuid;
 *   gid likewise; supplementary groups among the caller's), with no
 *   capabilities (permitted, effective, inheritable, ambient) and no
 *   securebits;
 * - ghost files are the caller's (owner) and not set-id;
 * - named unix sockets' files are the caller's;
 * - nothing that needs a capability: TCP repair (established
 *   connections), ports below 1024, fanotify, a negative oom_score_adj,
 *   another loginuid.
 *
 * Then, once ghosts exist, every file the tasks will open by name is opened
 * here first with the caller's filesystem credentials (O_PATH, then an
 * access check for the dumped access mode, asked of the kernel), and the
 * tasks reopen that very inode through our fd (/proc/<us>/fd/N): a name the
 * caller could not open, or swaps meanwhile, never reaches its tasks.
 *
 * Limits: rlimits, scheduling policies and other per-task settings are
 * restored as dumped and only bounded by what root without
 * CAP_SYS_RESOURCE may set; inotify watches are refused.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CallerCreds } from '../caller.js';
import { CriuTsError } from '../errors.js';
import { imageFile, loadImage, loadImageIfAny } from '../images/index.js';
import type { CredsEntry, FileEntry } from '../images/messages.js';
import { ACCESS, closeQuiet, fdAccessible, openPathAs, withFsCreds, O_ACCMODE, O_PATH, TCP_CLOSE, TCP_LISTEN, S_ISUID, S_ISGID } from '../sys/index.js';
import type { DumpImages } from './images.js';

const TCP = 6;

function refuse(what: string, data: Record<string, unknown> = {}): never {
  throw new CriuTsError('EPERM', `not restored for an unprivileged caller: ${what}`, { ...data, errno: 1 });
}

const nonZero = (words: readonly number[] | undefined): boolean => (words ?? []).some((w) => w !== 0);

function checkCreds(tid: number, c: CredsEntry, caller: CallerCreds): void {
  const uids = [c.uid, c.euid, c.suid, c.fsuid];
  const gids = [c.gid, c.egid, c.sgid, c.fsgid];
  if (uids.some((u) => u !== caller.uid)) refuse(`thread ${tid} would run as uids ${uids.join('/')}, the caller is uid ${caller.uid}`, { tid });
  if (gids.some((g) => g !== caller.gid)) refuse(`thread ${tid} would run as gids ${gids.join('/')}, the caller is gid ${caller.gid}`, { tid });
  const mine = new Set([caller.gid, ...caller.groups]);
  const extra = (c.groups ?? []).filter((g) => !mine.has(g));
  if (extra.length > 0) refuse(`thread ${tid} would be in groups ${extra.join(',')} the caller is not in`, { tid });
  if (nonZero(c.cap_prm) || nonZero(c.cap_eff) || nonZero(c.cap_inh) || nonZero(c.cap_amb)) {
    refuse(`thread ${tid} would hold capabilities`, { tid });
  }
  if (c.secbits !== 0) refuse(`thread ${tid} would have securebits 0x${c.secbits.toString(16)}`, { tid });
}

function checkFile(f: FileEntry, caller: CallerCreds): void {
  const p = f.usk?.file_perms;
  if (p !== undefined && p.uid !== caller.uid) refuse(`unix socket ${f.id} has a file owned by uid ${p.uid}`, { id: f.id });
  if (f.isk !== undefined) {
    if (f.isk.src_port !== 0 && f.isk.src_port < 1024) refuse(`socket ${f.id} is bound to port ${f.isk.src_port} (below 1024)`, { id: f.id });
    // A TCP socket in any state but CLOSE or LISTEN comes back through TCP repair (CAP_NET_ADMIN).
    if (f.isk.proto === TCP && f.isk.state !== TCP_CLOSE && f.isk.state !== TCP_LISTEN) refuse(`socket ${f.id} is a TCP connection (restored with TCP repair)`, { id: f.id });
  }
  const t = f.type;
  if (t === 'FANOTIFY' || t === 12 || t === 'INOTIFY' || t === 8) refuse(`file ${f.id} is an fanotify or inotify instance`, { id: f.id });
}

/** Everything that can be decided from the images: before a single file or task is created. */
export function checkImagesFor(img: DumpImages, caller: CallerCreds | undefined): void {
  if (caller === undefined) return;
  for (const t of img.tasks) {
    const tids = t.pstree.threads?.length ? t.pstree.threads : [t.pstree.pid];
    t.cores.forEach((core, i) => {
      const tid = tids[i] ?? t.pstree.pid;
      const c = core.thread_core?.creds;
      if (c === undefined) refuse(`${imageFile('CORE', tid)} has no credentials`, { tid });
      checkCreds(tid, c, caller);
    });
    const tc = t.cores[0]?.tc;
    if ((tc?.oom_score_adj ?? 0) < 0) refuse(`task ${t.pstree.pid} would get oom_score_adj ${tc?.oom_score_adj}`, { pid: t.pstree.pid });
    if (tc?.loginuid !== undefined && tc.loginuid !== 0xffffffff && tc.loginuid !== caller.uid) {
      refuse(`task ${t.pstree.pid} would get loginuid ${tc.loginuid}`, { pid: t.pstree.pid });
    }
  }
  // Re-creating a namespace (an injected unshare) needs CAP_SYS_ADMIN.
  const root = img.inventory.root_ids;
  for (const t of img.tasks) {
    for (const field of ['uts_ns_id', 'ipc_ns_id'] as const) {
      const got = t.ids?.[field];
      if (root !== undefined && got !== undefined && got !== root[field]) refuse(`task ${t.pstree.pid} was in a ${field.slice(0, 3)} namespace of its own`, { pid: t.pstree.pid });
    }
  }
  for (const f of img.files.values()) checkFile(f, caller);
  checkGhosts(img.dir, caller);
  checkImageFiles(img.dir);
}

/**
 * The images are in a directory the caller may write: each must be a file
 * of its own, not a link to someone else's (a pages image that is a link
 * to a root-only file would fill the caller's memory with it).
 */
function checkImageFiles(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.img')) continue;
    const st = lstatSync(join(dir, name));
    if (st.isSymbolicLink()) refuse(`${name} is a symbolic link`, { file: name });
    if (st.isFile() && st.nlink !== 1) refuse(`${name} has other hard links`, { file: name });
  }
}

function checkGhosts(dir: string, caller: CallerCreds): void {
  // No remaps: no ghosts.
  for (const r of loadImageIfAny(dir, 'REMAP_FPATH')?.entries ?? []) {
    if (r.remap_type !== 'GHOST' && r.remap_type !== 1) continue;
    const name = imageFile('GHOST_FILE', r.remap_id);
    const g = loadImage(dir, 'GHOST_FILE', r.remap_id).entries[0];
    if ((g.mode & (S_ISUID | S_ISGID)) !== 0) refuse(`${name}: a set-id file`, { file: name });
    if (g.uid !== caller.uid) refuse(`${name}: a file owned by uid ${g.uid}`, { file: name });
  }
}

/**
 * Open every file the tasks will open by name as the caller, and point the
 * entries at our fds. Returns the fds, to close once the restore is over.
 */
export function pinFilesFor(img: DumpImages, caller: CallerCreds | undefined): number[] {
  if (caller === undefined) return [];
  const fds: number[] = [];
  const ours = `/proc/${process.pid}/fd/`;
  // TTY entries find their pty by the name of their REG entry: checked, not renamed.
  const keepName = new Set<number>();
  for (const f of img.files.values()) if (f.tty?.regf_id !== undefined) keepName.add(f.tty.regf_id);
  try {
    for (const f of img.files.values()) {
      const reg = f.reg;
      if (reg === undefined || reg.name.startsWith(ours)) continue; // ghosts are ours already
      const acc = reg.flags & O_ACCMODE;
      const mode = (reg.flags & O_PATH) !== 0 ? 0 : acc === 0 ? ACCESS.R_OK : acc === 1 ? ACCESS.W_OK : ACCESS.R_OK | ACCESS.W_OK;
      const fd = withFsCreds(caller, () => {
        let pfd: number;
        try {
          // Links are followed, with the caller's rights: the kernel then checks the inode they lead to.
          pfd = openPathAs(reg.name);
        } catch (e) {
          refuse(`uid ${caller.uid} cannot reach ${reg.name}: ${(e as Error).message}`, { path: reg.name });
        }
        if (mode !== 0 && !fdAccessible(pfd, mode)) {
          closeQuiet(pfd);
          refuse(`uid ${caller.uid} may not open ${reg.name} for ${mode === ACCESS.R_OK ? 'reading' : 'writing'}`, { path: reg.name });
        }
        return pfd;
      });
      fds.push(fd);
      if (!keepName.has(f.id)) reg.name = `${ours}${fd}`;
    }
  } catch (e) {
    for (const fd of fds) closeQuiet(fd);
    throw e;
  }
  return fds;
}
