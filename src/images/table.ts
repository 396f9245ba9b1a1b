/**
 * The one table of CRIU image kinds (facts from CRIU 4.2's criu/include/magic.h
 * and criu/image-desc.c): the name crit prints, the magic, the file-name
 * pattern, the protobuf message of each entry, and what raw payload follows
 * an entry. Everything that opens an image by kind or by file name asks here.
 */

import { CriuTsError } from '../errors.js';
import type { MessageName, MessageTypes } from './messages.js';

export const IMG_COMMON_MAGIC = 0x54564319;
export const IMG_SERVICE_MAGIC = 0x55105940;
export const RAW_IMAGE_MAGIC = 0;

/** How many raw bytes follow an entry, decided from the decoded entry. */
export type PayloadRule =
  /** a length field of the entry (PIPES_DATA/FIFO_DATA `bytes`, SK_QUEUES `length`) */
  | { readonly kind: 'field'; readonly field: string }
  /** several lengths back to back (TCP_STREAM inq then outq; BPFMAP_DATA keys then values) */
  | { readonly kind: 'sum'; readonly fields: readonly string[] }
  /** SysV semaphores: nsems u16 values padded to 8 bytes */
  | { readonly kind: 'ipc-sem' }
  /** SysV shared memory: `size` bytes padded to 4, none when in_pagemaps (the pages are in pagemap-shmem-<id>.img) */
  | { readonly kind: 'ipc-shm' }
  /** SysV message queue: qnum x (u32 length, ipc_msg, msize bytes padded to 8) */
  | { readonly kind: 'ipc-msg' }
  /** GHOST_FILE: a ghost_file_entry then chunks (ghost_chunk_entry + `len` bytes) or the whole rest of the file */
  | { readonly kind: 'ghost' };

export type HeaderKind =
  /** IMG_COMMON_MAGIC then the image magic */
  | 'common'
  /** IMG_SERVICE_MAGIC then the image magic (stats, irmap-cache) */
  | 'service'
  /** only the image's own magic (inventory) */
  | 'bare'
  /** no header at all, not protobuf (pages, tarballs, ip tool dumps): not decodable */
  | 'raw';

export interface ImageKind {
  /**
   * The name code opens an image file by (CRIU's CR_FD_* without the
   * prefix): crit's name, unless two files share it (PAGEMAP and
   * SHMEM_PAGEMAP, SIGNAL and PSIGNAL, ...). Unique in the table.
   */
  readonly key: string;
  /** as crit prints it in "magic" */
  readonly name: string;
  readonly magic: number;
  /** CRIU's file-name format (printf-like: %d %u %lu %ld %x %s) */
  readonly pattern: string;
  readonly header: HeaderKind;
  /** protobuf message of each entry (of entries after the first when `head` is set) */
  readonly message?: string;
  /** a different message for the first entry (PAGEMAP: pagemap_head) */
  readonly head?: string;
  /** a different message for the entries after the first (GHOST_FILE: ghost_chunk_entry) */
  readonly chunk?: string;
  readonly payload?: PayloadRule;
  /** read for old dumps only; never chosen when another kind shares the magic or name */
  readonly legacy?: boolean;
}

/** What a row sets beyond name, magic, pattern and message. */
type RowMore = Partial<Pick<ImageKind, 'key' | 'header' | 'head' | 'chunk' | 'payload' | 'legacy'>>;
/** A row keeps its literal key, name and messages, so the entry types below follow from the table itself. */
type Row<N extends string, M, X extends RowMore> = ImageKind & Omit<X, 'key'> & {
  readonly key: X extends { key: infer K extends string } ? K : N;
  readonly name: N;
  readonly message: M;
};

function k<const N extends string, const M extends MessageName, const X extends RowMore = Record<never, never>>(
  name: N, magic: number, pattern: string, message: M, more?: X,
): Row<N, M, X> {
  return { key: name, name, magic, pattern, header: 'common', message, ...more } as Row<N, M, X>;
}

function raw<const N extends string>(name: N, pattern: string): Row<N, undefined, { header: 'raw' }> {
  return { key: name, name, magic: RAW_IMAGE_MAGIC, pattern, header: 'raw', message: undefined };
}

const TABLE = [
  k('INVENTORY', 0x58313116, 'inventory.img', 'inventory_entry', { header: 'bare' }),
  k('PSTREE', 0x50273030, 'pstree.img', 'pstree_entry'),
  k('FDINFO', 0x56213732, 'fdinfo-%u.img', 'fdinfo_entry'),
  k('PAGEMAP', 0x56084025, 'pagemap-%lu.img', 'pagemap_entry', { head: 'pagemap_head' }),
  // Shared memory uses the same magic and layout; crit calls both PAGEMAP.
  k('PAGEMAP', 0x56084025, 'pagemap-shmem-%lu.img', 'pagemap_entry', { key: 'SHMEM_PAGEMAP', head: 'pagemap_head' }),
  k('CORE', 0x55053847, 'core-%u.img', 'core_entry'),
  k('IDS', 0x54432030, 'ids-%u.img', 'task_kobj_ids_entry'),
  k('MM', 0x57492820, 'mm-%u.img', 'mm_entry'),
  k('VMAS', 0x54123737, 'vmas-%u.img', 'vma_entry', { legacy: true }),
  k('PIPES', 0x56513555, 'pipes.img', 'pipe_entry'),
  k('PIPES_DATA', 0x56453709, 'pipes-data.img', 'pipe_data_entry', { payload: { kind: 'field', field: 'bytes' } }),
  k('FIFO', 0x58364939, 'fifo.img', 'fifo_entry'),
  k('FIFO_DATA', 0x59333054, 'fifo-data.img', 'pipe_data_entry', { payload: { kind: 'field', field: 'bytes' } }),
  k('SIGACT', 0x55344201, 'sigacts-%u.img', 'sa_entry', { legacy: true }),
  k('UNIXSK', 0x54373943, 'unixsk.img', 'unix_sk_entry'),
  k('INETSK', 0x56443851, 'inetsk.img', 'inet_sk_entry'),
  k('PACKETSK', 0x60454618, 'packetsk.img', 'packet_sock_entry'),
  k('NETLINK_SK', 0x58005614, 'netlinksk.img', 'netlink_sk_entry'),
  k('ITIMERS', 0x57464056, 'itimers-%u.img', 'itimer_entry', { legacy: true }),
  k('POSIX_TIMERS', 0x52603957, 'posix-timers-%u.img', 'posix_timer_entry', { legacy: true }),
  k('SK_QUEUES', 0x56264026, 'sk-queues.img', 'sk_packet_entry', { payload: { kind: 'field', field: 'length' } }),
  k('UTSNS', 0x54473203, 'utsns-%u.img', 'utsns_entry'),
  k('CREDS', 0x54023547, 'creds-%u.img', 'creds_entry', { legacy: true }),
  k('IPC_VAR', 0x53115007, 'ipcns-var-%u.img', 'ipc_var_entry'),
  k('IPCNS_SHM', 0x46283044, 'ipcns-shm-%u.img', 'ipc_shm_entry', { payload: { kind: 'ipc-shm' } }),
  k('IPCNS_MSG', 0x55453737, 'ipcns-msg-%u.img', 'ipc_msg_entry', { payload: { kind: 'ipc-msg' } }),
  k('IPCNS_SEM', 0x59573019, 'ipcns-sem-%u.img', 'ipc_sem_entry', { payload: { kind: 'ipc-sem' } }),
  k('REG_FILES', 0x50363636, 'reg-files.img', 'reg_file_entry'),
  k('EXT_FILES', 0x59255641, 'ext-files.img', 'ext_file_entry'),
  k('NS_FILES', 0x61394011, 'ns-files.img', 'ns_file_entry'),
  k('FS', 0x51403912, 'fs-%u.img', 'fs_entry'),
  k('REMAP_FPATH', 0x59133954, 'remap-fpath.img', 'remap_file_path_entry'),
  k('GHOST_FILE', 0x52583605, 'ghost-file-%x.img', 'ghost_file_entry', { chunk: 'ghost_chunk_entry', payload: { kind: 'ghost' } }),
  k('TCP_STREAM', 0x51465506, 'tcp-stream-%x.img', 'tcp_stream_entry', { payload: { kind: 'sum', fields: ['inq_len', 'outq_len'] } }),
  k('EVENTFD_FILE', 0x44523722, 'eventfd.img', 'eventfd_file_entry'),
  k('EVENTPOLL_FILE', 0x45023858, 'eventpoll.img', 'eventpoll_file_entry'),
  k('EVENTPOLL_TFD', 0x44433746, 'eventpoll-tfd.img', 'eventpoll_tfd_entry'),
  k('SIGNALFD', 0x57323820, 'signalfd.img', 'signalfd_entry'),
  k('INOTIFY_FILE', 0x48424431, 'inotify.img', 'inotify_file_entry'),
  k('INOTIFY_WD', 0x54562009, 'inotify-wd.img', 'inotify_wd_entry'),
  k('FANOTIFY_FILE', 0x55096122, 'fanotify.img', 'fanotify_file_entry'),
  k('FANOTIFY_MARK', 0x56506035, 'fanotify-mark.img', 'fanotify_mark_entry'),
  k('MNTS', 0x55563928, 'mountpoints-%u.img', 'mnt_entry'),
  k('NETDEV', 0x57373951, 'netdev-%u.img', 'net_device_entry'),
  k('NETNS', 0x55933752, 'netns-%u.img', 'netns_entry'),
  k('TTY_FILES', 0x59433025, 'tty.img', 'tty_file_entry'),
  k('TTY_INFO', 0x59453036, 'tty-info.img', 'tty_info_entry'),
  // tty_data_entry carries its bytes inside the message: no raw payload.
  k('TTY_DATA', 0x59413026, 'tty-data.img', 'tty_data_entry'),
  k('FILE_LOCKS', 0x54323616, 'filelocks.img', 'file_lock_entry'),
  k('FILE_LOCKS', 0x54323616, 'filelocks-%u.img', 'file_lock_entry', { key: 'FILE_LOCKS_PID', legacy: true }),
  k('RLIMIT', 0x57113925, 'rlimit-%u.img', 'rlimit_entry', { legacy: true }),
  k('SIGNAL', 0x59255647, 'signal-s-%d.img', 'signal_queue_entry', { legacy: true }),
  k('SIGNAL', 0x59255647, 'signal-p-%d.img', 'signal_queue_entry', { key: 'PSIGNAL', legacy: true }),
  k('TUNFILE', 0x57143751, 'tunfile.img', 'tunfile_entry'),
  k('CGROUP', 0x59383330, 'cgroup.img', 'cgroup_entry'),
  k('TIMERFD', 0x50493712, 'timerfd.img', 'timerfd_entry'),
  k('CPUINFO', 0x61404013, 'cpuinfo.img', 'cpuinfo_entry'),
  k('USERNS', 0x55474906, 'userns-%u.img', 'userns_entry'),
  k('SECCOMP', 0x64413049, 'seccomp.img', 'seccomp_entry'),
  k('BINFMT_MISC', 0x67343323, 'binfmt-misc.img', 'binfmt_misc_entry'),
  k('BINFMT_MISC', 0x67343323, 'binfmt-misc-%u.img', 'binfmt_misc_entry', { key: 'BINFMT_MISC_OLD', legacy: true }),
  k('AUTOFS', 0x49353943, 'autofs-%u.img', 'autofs_entry'),
  k('FILES', 0x56303138, 'files.img', 'file_entry'),
  k('MEMFD_INODE', 0x48453499, 'memfd.img', 'memfd_inode_entry'),
  k('TIMENS', 0x43114433, 'timens-%u.img', 'timens_entry'),
  k('PIDNS', 0x61157326, 'pidns-%u.img', 'pidns_entry'),
  k('BPFMAP_FILE', 0x57506142, 'bpfmap-file.img', 'bpfmap_file_entry'),
  k('BPFMAP_DATA', 0x64324033, 'bpfmap-data.img', 'bpfmap_data_entry', { payload: { kind: 'sum', fields: ['keys_bytes', 'values_bytes'] } }),
  k('APPARMOR', 0x59423047, 'apparmor.img', 'apparmor_entry'),
  k('STATS', 0x57093306, 'stats-%s', 'stats_entry', { header: 'service' }),
  k('IRMAP_CACHE', 0x57004059, 'irmap-cache', 'irmap_cache_entry', { header: 'service' }),
  // criu-ts only (CRIU never reads it): size and SHA-256 of every file of the dump.
  k('CRIU_TS_CHECKSUMS', 0x43545343, 'criu-ts-checksums', 'criu_ts_checksum_entry'),
  raw('PAGES', 'pages-%u.img'),
  raw('PAGES_OLD', 'pages-shmem-%ld.img'),
  raw('IFADDR', 'ifaddr-%u.img'),
  raw('ROUTE', 'route-%u.img'),
  raw('ROUTE6', 'route6-%u.img'),
  raw('RULE', 'rule-%u.img'),
  raw('IPTABLES', 'iptables-%u.img'),
  raw('IP6TABLES', 'ip6tables-%u.img'),
  raw('NFTABLES', 'nftables-%u.img'),
  raw('TMPFS_IMG', 'tmpfs-%u.tar.gz.img'),
  raw('TMPFS_DEV', 'tmpfs-dev-%u.tar.gz.img'),
  raw('NETNF_CT', 'netns-ct-%u.img'),
  raw('NETNF_EXP', 'netns-exp-%u.img'),
];

export const IMAGE_KINDS: readonly ImageKind[] = TABLE;

type TableRow = (typeof TABLE)[number];
/** Every image file kind by the name code opens it by ("CORE", "SHMEM_PAGEMAP", "PAGES", ...). */
export type ImageKey = TableRow['key'];
/** The kinds whose entries are protobuf messages. */
export type ProtoImageKey = Extract<TableRow, { message: MessageName }>['key'];
/** The kinds with no header at all (pages, ip tool dumps, tarballs). */
export type RawImageKey = Exclude<ImageKey, ProtoImageKey>;
type RowOf<K extends ImageKey> = Extract<TableRow, { key: K }>;
type Msg<M> = M extends MessageName ? MessageTypes[M] : never;
/** The message type of an image's entries (of those after the first where the kind has a head). */
export type EntryOf<K extends ProtoImageKey> = Msg<RowOf<K>['message']>;
/**
 * An image's entries in file order, typed from the table: a head first
 * where the kind has one (PAGEMAP's pagemap_head), a ghost file's chunks
 * after its ghost_file_entry.
 */
export type EntriesOf<K extends ProtoImageKey> =
  RowOf<K> extends { head: infer H } ? readonly [Msg<H>, ...EntryOf<K>[]]
    : RowOf<K> extends { chunk: infer C } ? readonly [EntryOf<K>, ...Msg<C>[]]
      : readonly EntryOf<K>[];
/** What an image's id is made of: a pid, an object id, an inode, "dump" for stats-dump. */
export type ImageId = number | bigint | string;

const byKey = new Map<string, ImageKind>(IMAGE_KINDS.map((kind) => [kind.key, kind]));
const byMagic = new Map<number, ImageKind>();
const byName = new Map<string, ImageKind>();
/** Magics more than one decodable kind has (pagemap and pagemap-shmem): only there does the file name decide. */
const sharedMagics = new Set<number>();
for (const kind of IMAGE_KINDS) {
  if (kind.header === 'raw') continue;
  const m = byMagic.get(kind.magic);
  if (m !== undefined) sharedMagics.add(kind.magic);
  if (m === undefined || (m.legacy === true && kind.legacy !== true)) byMagic.set(kind.magic, kind);
  const n = byName.get(kind.name);
  if (n === undefined || (n.legacy === true && kind.legacy !== true)) byName.set(kind.name, kind);
}

function patternRegExp(pattern: string): RegExp {
  const esc = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = esc
    .replace(/%l?[ud]/g, (m) => (m.endsWith('d') ? '(-?\\d+)' : '(\\d+)'))
    .replace(/%x/g, '([0-9a-f]+)')
    .replace(/%s/g, '(.+)');
  return new RegExp(`^${re}$`);
}

/** Each kind's pattern as a regexp, with the literal text before its first conversion (a cheap test first). */
const byPattern: { kind: ImageKind; re: RegExp; prefix: string }[] = IMAGE_KINDS
  // More specific patterns (longer literal text) first, so pagemap-shmem-1 is not pagemap-%lu.
  .map((kind) => ({ kind, re: patternRegExp(kind.pattern), lit: kind.pattern.replace(/%l?[udxs]/g, '').length }))
  .sort((a, b) => b.lit - a.lit || Number(a.kind.legacy === true) - Number(b.kind.legacy === true))
  .map(({ kind, re }) => ({ kind, re, prefix: kind.pattern.split('%')[0] ?? '' }));

/** Whether more than one decodable kind has this magic, so that an image's file name must tell which it is. */
export function magicShared(magic: number): boolean {
  return sharedMagics.has(magic);
}

/** The protobuf message of entry `index` in an image of this kind. */
export function entryMessage(kind: ImageKind, index: number): string {
  if (index === 0 && kind.head !== undefined) return kind.head;
  if (index > 0 && kind.chunk !== undefined) return kind.chunk;
  return kind.message ?? '';
}

/** The decodable kind with this magic (the second u32 of the file, or the first for inventory). */
export function kindByMagic(magic: number): ImageKind | undefined {
  return byMagic.get(magic);
}

/** The kind crit calls `name` ("CORE", "PAGEMAP", ...). */
export function kindByName(name: string): ImageKind | undefined {
  return byName.get(name);
}

/**
 * The patterns a name can match, by its first character (in byPattern's
 * order, with those whose literal text is empty in every list): a restore
 * looks up every file of the dump (700 in a 100-process one), and each
 * look-up went through a hundred patterns.
 */
const byFirst = new Map<string, typeof byPattern>();
for (const p of byPattern) {
  const c = p.prefix.charAt(0);
  if (c !== '' && !byFirst.has(c)) byFirst.set(c, byPattern.filter((q) => q.prefix === '' || q.prefix.startsWith(c)));
}
const anyFirst = byPattern.filter((q) => q.prefix === '');

/** The kind whose CRIU file name pattern matches this file's base name. */
export function kindByFileName(fileName: string): ImageKind | undefined {
  const base = fileName.slice(fileName.lastIndexOf('/') + 1);
  for (const { kind, re, prefix } of byFirst.get(base.charAt(0)) ?? anyFirst) if (base.startsWith(prefix) && re.test(base)) return kind;
  return undefined;
}

/** Each kind's pattern regexp, made once. */
const regExpOf = new Map<ImageKind, RegExp>(byPattern.map((p) => [p.kind, p.re]));

/**
 * The id in the file name of an image `key` (core-42.img: "42"), or
 * undefined when the name is not one of its files.
 */
export function imageIdOf(key: ImageKey, fileName: string): string | undefined {
  const base = fileName.slice(fileName.lastIndexOf('/') + 1);
  const kind = kindByKey(key);
  // A name of this kind starts with its pattern's literal text: the others are passed over at once.
  if (!base.startsWith(patternParts(kind)?.head ?? kind.pattern)) return undefined;
  if (kindByFileName(base)?.key !== key) return undefined;
  return (regExpOf.get(kind) ?? patternRegExp(kind.pattern)).exec(base)?.[1];
}

/** The file name CRIU uses for an image of this pattern with this id (e.g. core-%u.img, 42). */
export function imageFileName(kind: ImageKind, id?: number | bigint | string): string {
  if (id === undefined) return kind.pattern;
  const p = patternParts(kind);
  if (p === undefined) return kind.pattern;
  return `${p.head}${p.spec === '%x' ? BigInt(id).toString(16) : String(id)}${p.tail}`;
}

/** A pattern cut around its first conversion (core-%u.img: "core-", "%u", ".img"), made once per kind. */
const partsOf = new WeakMap<ImageKind, { head: string; spec: string; tail: string } | null>();

function patternParts(kind: ImageKind): { head: string; spec: string; tail: string } | undefined {
  let p = partsOf.get(kind);
  if (p === undefined) {
    const m = /%l?[udxs]/.exec(kind.pattern);
    p = m === null ? null : { head: kind.pattern.slice(0, m.index), spec: m[0], tail: kind.pattern.slice(m.index + m[0].length) };
    partsOf.set(kind, p);
  }
  return p ?? undefined;
}

/** The kind code opens an image by ("CORE", "SHMEM_PAGEMAP", ...). */
export function kindByKey(key: ImageKey): ImageKind {
  const kind = byKey.get(key);
  if (kind === undefined) throw new CriuTsError('EINTERNAL', `no image kind ${key}`, { key });
  return kind;
}

/**
 * The file name of the image `key` with id `id` (CORE, 42: core-42.img;
 * FILES: files.img). The one place image file names are made: nothing
 * outside this table spells one.
 */
export function imageFile(key: ImageKey, id?: ImageId): string {
  const kind = kindByKey(key);
  const takesId = /%l?[udxs]/.test(kind.pattern);
  if (takesId !== (id !== undefined)) {
    throw new CriuTsError('EINTERNAL', `image ${key} (${kind.pattern}) ${takesId ? 'needs' : 'takes no'} id`, { key });
  }
  return imageFileName(kind, id);
}
