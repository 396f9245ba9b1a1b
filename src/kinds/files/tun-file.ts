/**
 * Open /dev/net/tun files (kernel: struct tun_file, a queue of a tun/tap
 * device once attached with TUNSETIFF): CRIU's TUNF file_entry
 * (tunfile_entry: id, the device it is attached to, whether its queue is
 * detached (TUNSETQUEUE IFF_DETACH_QUEUE), the net namespace it was opened
 * in).
 *
 * Dump: TUNGETIFF on our copy names the device and says whether the queue
 * is detached; the file's net namespace is asked with SIOCGSKNS, as a
 * socket's. A file never attached (TUNGETIFF: EBADFD) in its holder's
 * namespace is left to the REG kind (isTun). The device itself is saved with
 * its namespace (kinds/ns/net-tun.ts), its vnet header size and send
 * buffer read through such a file when it is held.
 *
 * Restore: in the task, inside the file's net namespace
 * (kinds/ns/net.ts inSocketNetns): open /dev/net/tun, TUNSETIFF with the
 * device's saved flags (the restore made every tun device persistent,
 * net-tun.ts), TUNSETQUEUE IFF_DETACH_QUEUE for a detached queue, and,
 * for a device that was not persistent, TUNSETPERSIST 0 once a file holds
 * it again (the first file attached does it, as CRIU's).
 *
 * Limits: a tap with a socket filter attached is refused at dump, as CRIU
 * does; the REG twin CRIU writes beside each TUNF entry (same id, the
 * path, the open flags) is not written, so CRIU cannot restore these
 * images, and a file opened with flags other than O_RDWR is refused at
 * dump (they would have nowhere to go).
 */
import { CriuTsError } from '../../errors.js';
import type { FileEntry, TunfileEntry } from '../../images/messages.js';
import { statSync } from 'node:fs';
import { AT_FDCWD, NR, O_RDWR, netNamespaceInoOfSocket, TUN_MAJOR, TUN_MINOR, O_LARGEFILE, O_CLOEXEC } from '../../sys/index.js';
import type { FdProbe, FileKind, RestoreContext, RestoreTaskHandle } from '../types.js';
import { CRIU_NET_NS, socketNetNsId } from './socket-opts/net-ns.js';
import { inSocketNetns, tunDeviceFlags } from '../ns/net.js';
import { IFF_ATTACH_FLAGS, tunAttachment } from '../ns/net-tun.js';
import { IFF_DETACH_QUEUE, IFF_PERSIST, TUNSETIFF, TUNSETPERSIST, TUNSETQUEUE } from '../../sys/index.js';

const TUN_PATH = '/dev/net/tun';
/** what open() adds or fdinfo shows that the restore gives back anyway: O_LARGEFILE, O_CLOEXEC */
const O_IGNORED = O_LARGEFILE | O_CLOEXEC;

/**
 * A tun file this kind takes: one attached to a device, or one opened in
 * another net namespace than its holder's. A file opened and never
 * attached, in its holder's namespace, is the character device it looks
 * like: left to the REG kind, which keeps its open flags (and CRIU reads it).
 */
function isTun(p: FdProbe): boolean {
  if (p.link !== TUN_PATH || !p.stat.isCharacterDevice()) return false;
  const rdev = p.stat.rdev;
  if (((rdev >> 8) & 0xfff) !== TUN_MAJOR || ((rdev & 0xff) | ((rdev >> 12) & 0xfff00)) !== TUN_MINOR) return false;
  if (tunAttachment(p.localFd, `task ${p.pid} fd ${p.fd}: ${TUN_PATH}`) !== undefined) return true;
  try {
    return netNamespaceInoOfSocket(p.localFd) !== statSync(`/proc/${p.pid}/ns/net`).ino;
  } catch {
    return false;
  }
}

function tunOf(e: FileEntry): TunfileEntry {
  if (e.tunf === undefined) throw new CriuTsError('EIMAGE', `file ${e.id}: TUNF entry without tunfile_entry`, { id: e.id });
  return e.tunf;
}

function restoreTun(t: RestoreTaskHandle, e: FileEntry, ctx: RestoreContext): number {
  const tf = tunOf(e);
  const what = `task ${t.pid}: tun file ${e.id}${tf.netdev ? ` (${tf.netdev})` : ''}`;
  return inSocketNetns(t, ctx, tf.ns_id, () => {
    // O_RDWR, as every tun user opens it (the flags of the open are not in the entry).
    const fd = Number(t.syscall(`open ${TUN_PATH}`, NR.openat, AT_FDCWD, t.putString(TUN_PATH), O_RDWR, 0));
    if (tf.netdev === undefined || tf.netdev === '') return fd;
    const flags = tunDeviceFlags(ctx, tf.ns_id, tf.netdev);
    if (flags === undefined) throw new CriuTsError('EIMAGE', `${what}: no tun device ${tf.netdev} among the saved devices of its net namespace`, { device: tf.netdev });
    const ifr = Buffer.alloc(40);
    ifr.write(tf.netdev, 0, 15, 'latin1');
    ifr.writeUInt16LE(flags & IFF_ATTACH_FLAGS, 16);
    t.syscall(`TUNSETIFF ${tf.netdev}`, NR.ioctl, fd, TUNSETIFF, t.putBytes(ifr));
    if (tf.detached === true) {
      const q = Buffer.alloc(40);
      q.writeUInt16LE(IFF_DETACH_QUEUE, 16);
      t.syscall(`TUNSETQUEUE ${tf.netdev} detach`, NR.ioctl, fd, TUNSETQUEUE, t.putBytes(q));
    }
    // Made persistent by the restore to outlive the moment no file held it: as it was now.
    if ((flags & IFF_PERSIST) === 0) t.syscall(`TUNSETPERSIST 0 ${tf.netdev}`, NR.ioctl, fd, TUNSETPERSIST, 0);
    return fd;
  });
}

export const tunFileKind: FileKind = {
  name: 'tun',
  type: 'TUNF',
  detect: isTun,
  dump(p, id, ctx): FileEntry {
    const what = `task ${p.pid} fd ${p.fd}: ${TUN_PATH}`;
    const flags = p.fdinfo.flags & ~O_IGNORED;
    if (flags !== O_RDWR) {
      throw new CriuTsError('EUNSUPPORTED', `${what} is open with flags 0${flags.toString(8)}: only O_RDWR tun files are restored (CRIU keeps the flags in a REG entry criu-ts does not write)`, { pid: p.pid, fd: p.fd, flags });
    }
    const tunf: TunfileEntry = { id };
    const nsId = socketNetNsId(ctx, p, p.netNsId);
    if (nsId !== undefined) tunf.ns_id = nsId;
    const a = tunAttachment(p.localFd, what);
    if (a !== undefined) {
      if (nsId === ctx.memo(CRIU_NET_NS, () => ({ id: undefined })).id) {
        throw new CriuTsError('EUNSUPPORTED', `${what} is attached to ${a.name}, a device of criu-ts's own net namespace, which is not saved: a tree with a net namespace of its own is needed`, { pid: p.pid, fd: p.fd, device: a.name });
      }
      tunf.netdev = a.name;
      if ((a.flags & IFF_DETACH_QUEUE) !== 0) tunf.detached = true;
    }
    return { type: 'TUNF', id, tunf };
  },
  restore: (t, e, _fdi, ctx) => restoreTun(t, e, ctx),
};
