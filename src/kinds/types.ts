/**
 * The contract between the core (src/dump, src/restore) and the resource
 * kinds: the dump and restore contexts every kind is handed, and the file
 * kinds. A file kind recognises one kind of open file, turns it into a
 * CRIU file_entry at dump, and re-creates it inside a restored task.
 * The options kinds act on are in options.ts; ResourceKind
 * (resource-kind.ts) is the contract of the kinds that run per tree
 * (namespaces, mounts, cgroups), AddressSpaceKind (space.ts) that of a
 * task's memory; kind.ts makes a registry entry of them.
 */
import type { Stats } from 'node:fs';
import type { FdInfo } from '../proc/index.js';
import type { InventoryEntry, FileEntry, FdinfoEntry, TaskKobjIdsEntry, TaskCoreEntry, ThreadCoreEntry } from '../images/messages.js';
import type { EntriesOf, EntryOf, ImageId, NsKind, ProtoImageKey, TypedImage } from '../images/index.js';
import type { Tracee } from '../infect/tracee.js';
import type { PageServerClient } from './memory/page-server-client.js';
import type { DumpKindOptions, RestoreKindOptions } from './options.js';
import type { DumpTreeView, DumpTaskView, RestoreTreeView, RestoreTreeTask } from './tree-views.js';

import type { StateKey } from './state-key.js';

export { stateKey, type StateKey } from './state-key.js';
export type * from './options.js';
export type * from './tree-views.js';

/** What the core learned about one fd before asking the kinds. */
export interface FdProbe {
  pid: number;
  fd: number;
  /** readlink /proc/PID/fd/N ("/path", "pipe:[123]", "socket:[45]", "anon_inode:[eventfd]", ...) */
  link: string;
  fdinfo: FdInfo;
  /** fstat of our own copy of the fd (pidfd_getfd) */
  stat: Stats;
  /** our copy of the fd, valid during dump; closed by the core */
  localFd: number;
  /** the net namespace as numbered in ids-<pid>.img (net_ns_id): a socket's own (it may not be its holder's), else the task's */
  netNsId: number | undefined;
  /** for a file in flight (pid is ours): the task holding the socket whose queue carries it */
  inFlightFrom?: number;
}

/** Images filled by kinds during a dump, an entry (and maybe a payload) at a time, written once when every task is dumped. */
export type KindImage = 'PIPES_DATA' | 'FIFO_DATA' | 'SK_QUEUES' | 'MEMFD_INODE' | 'TTY_INFO' | 'TTY_DATA' | 'FILE_LOCKS' | 'REMAP_FPATH';

/** The entry type of each of them, from the image table. */
export type KindImageEntries = { readonly [K in KindImage]: EntryOf<K> };

/**
 * What the dump core hands every kind: the one way a kind writes images,
 * keeps per-dump state and registers work for the end of the dump.
 */
export interface DumpContext {
  /** the images dir */
  readonly dir: string;
  /** this dump's id (inventory.img's dump_criu_run_id): names what must outlive the dump, such as the network lock */
  readonly runId: string;
  readonly opts: DumpKindOptions;
  /** register an extra file entry (e.g. the REG entry behind a FIFO); returns its id */
  addFile(make: (id: number) => FileEntry): number;
  /** a file entry of this dump by id */
  fileById(id: number): FileEntry | undefined;
  /**
   * A file that no task holds but one of ours (e.g. received with SCM_RIGHTS
   * while peeking a socket queue): dump it like a task's fd, once per open
   * file description, and return its file id. The core takes the fd and
   * closes it when the dump ends.
   */
  dumpInFlight?(localFd: number, what: string, holderPid: number): number;
  /** the id ids-PID.img gives the namespace of `type` ("net", "uts"...) with inode `ino` (set by the core) */
  nsIdOf?(type: string, ino: number): number;
  /** queue an entry (and its raw payload) for a dump-wide image, written once every task is dumped */
  emit<K extends KindImage>(image: K, entry: KindImageEntries[K], payload?: Buffer): void;
  /**
   * Write an image of the kind's own now (GHOST_FILE with the ghost's id,
   * TCP_STREAM with the socket's inode, ...), atomically, into the images
   * dir; the table names the file and types the entries.
   */
  saveImage<K extends ProtoImageKey>(key: K, id: ImageId | undefined, entries: EntriesOf<K>, payloads?: readonly (Buffer | undefined)[]): void;
  /** write a raw image (no magic, CRIU's RAW_IMAGE_MAGIC: ifaddr-<ns>.img, route-<ns>.img, ...) atomically into the images dir */
  writeRawImage(file: string, data: Buffer): void;
  /** fields of inventory.img a kind owns (root_cg_set), merged into it when it is written */
  setInventory(fields: Partial<InventoryEntry>): void;
  /** the value under `key` for this dump, made by `make` on first use */
  memo<T>(key: StateKey<T>, make: () => T): T;
  /** the next free N for a pages-N.img */
  nextPagesId(): number;
  /**
   * dump --page-server: where the pages of a shared object a kind saves
   * (a memfd's contents) go instead of the images dir, as CRIU sends them;
   * the server writes their pagemap-shmem image (the memory dump may send
   * the same object's, from a mapping of it: the server keeps the last).
   */
  readonly pageServer?: PageServerClient | undefined;
  /** count pages a kind wrote for a shared object (shared anonymous memory, memfd): stats-dump's shpages */
  countSharedPages(n: number): void;
  /** run `step` once the images of every task and the kinds' queued images are written, before stats-dump */
  atEnd(step: () => void): void;
  /**
   * Run `step` once the dump is over, whether it succeeded or not:
   * `tasksLive` tells whether the dumped tasks go on running (the dump
   * failed, or --leave-running/--leave-stopped) or were killed.
   */
  atExit(step: (tasksLive: boolean) => void): void;
  /**
   * A pid, tid, process group or session id as criu-ts sees it, as the
   * dumped tree sees it (what CRIU's images hold: F_SETOWN owners, lock
   * owners, a tty's session): the same number unless the tree lives in a
   * pid namespace of its own; undefined for a process the tree cannot name
   * (outside its pid namespace, or not one of its tasks, groups or sessions).
   */
  vpid(pid: number): number | undefined;
}

/** Restore-side view of a task: enough to open files inside it. */
export interface RestoreTaskHandle {
  /** the task's pid in criu-ts's pid namespace: for /proc, pidfd_open, signals sent by us */
  pid: number;
  /**
   * its pid in the images, the tree's pid namespace's: for lookups in the
   * images (ctx.taskFds, lock owners, a tty's session); the same as `pid`
   * unless the tree lives in a pid namespace of its own
   */
  vpid: number;
  /**
   * its pid as it sees itself (getpid()): for pids passed to syscalls
   * injected into it; the same as `vpid` unless it lives in a pid
   * namespace nested below the tree's (docs/namespaces.md)
   */
  ownPid: number;
  tracee: Tracee;
  /** copy a NUL-terminated string into the task's scratch area; returns its address */
  putString(s: string): bigint;
  /** copy bytes into scratch; returns the address */
  putBytes(b: Buffer): bigint;
  /** run a syscall in the task (throws on -errno) */
  syscall(name: string, nr: number, ...args: (number | bigint)[]): bigint;
  /** put our fd `ours` into the task (the same open file description, SCM_RIGHTS); returns its number there */
  installFd(ours: number): number;
}

export interface LazyRange { start: bigint; end: bigint }

/** Where a lazily restored task's userfaultfd goes: the connection to the lazy-pages daemon. */
export interface LazySink {
  /**
   * Hand over `uffd` (our copy; the sink owns it from now on) of task
   * `pid` (ours), whose pages are those of pagemap-`imageId`.img over
   * `ranges` (registered, sorted).
   */
  handOver(pid: number, imageId: number, uffd: number, ranges: readonly LazyRange[]): void;
}

/** A dump-wide image kinds wrote, as the restore core loaded it once: entries and their raw payloads. */
export interface KindImageData<K extends KindImage> {
  entries: readonly KindImageEntries[K][];
  /** the payload after each entry (empty when none) */
  payloads: readonly Buffer[];
}

/**
 * What the restore core hands every kind: everything the dump wrote,
 * loaded once and typed, state kept for the length of the restore under
 * keys the kinds own, and the hooks into the order of the restore. Kinds
 * never read an image file themselves.
 */
export interface RestoreContext {
  /** the images dir: only for files a restored task opens itself (pages-N.img for preadv) */
  readonly dir: string;
  readonly opts: RestoreKindOptions;
  /** inventory.img as dumped */
  readonly inventory: InventoryEntry;
  /** every file entry of the dump, in files.img order */
  readonly files: readonly FileEntry[];
  /** a file entry of the dump by id */
  fileById(id: number): FileEntry | undefined;
  /** the fd table task `pid` had at dump (its final fds), or undefined for a pid not in the dump */
  taskFds(pid: number): readonly FdinfoEntry[] | undefined;
  /** a dump-wide image kinds wrote (pipes-data.img, sk-queues.img, ...); empty when the dump has none */
  kindImage<K extends KindImage>(image: K): KindImageData<K>;
  /** an image of a kind's own (TCP_STREAM with the socket's inode, SHMEM_PAGEMAP with the object's id), typed by the table, or undefined when absent */
  image<K extends ProtoImageKey>(key: K, id?: ImageId): TypedImage<K> | undefined;
  /** a raw image (no magic: ifaddr-<ns>.img, ...) by file name, or undefined when absent */
  rawImage(file: string): Buffer | undefined;
  /** the value under `key` for this restore, made by `make` on first use */
  state<T>(key: StateKey<T>, make: () => T): T;
  /**
   * Tell the core that the entry `fileId` is already open in this task as
   * `fd` (e.g. the write end created together with the read end by pipe2);
   * the core then will not call restore() for it in this task and its
   * children, and dup3s `fd` where that entry is used.
   */
  provide(fileId: number, fd: number): void;
  /**
   * Tell the core that `fd`, which restore() is about to return, has
   * FD_CLOEXEC already as its fdinfo entry asks (opened with O_CLOEXEC
   * exactly when `fdi.flags` has FD_CLOEXEC): the core sets no fd flags on
   * it then, one call fewer in the task. Absent where nothing uses it.
   */
  cloexecAsAsked?(fd: number): void;
  /**
   * Run `step` once every task's files exist and every `finish` ran, before
   * any task runs: for work that needs the other end of something to exist
   * (a TCP connection leaves repair mode only when its peer socket, maybe
   * in another task, is there to answer).
   * With `alsoOnFailure`, it also runs if the restore fails before then
   * (cleanup of what the kind made, e.g. a temporary name).
   */
  afterAllFiles(step: () => void, opts?: { alsoOnFailure?: boolean }): void;
  /**
   * Run `step` last, just before the tasks are let go: every task is
   * final, the ghost files' names are gone again and the network lock is
   * lifted (CRIU's order: it unlocks the network, then takes the
   * connections out of repair mode, whose window probes must reach their
   * peers). Not run when the restore failed before then; a failing step
   * fails the restore (connections may have spoken by then, as in CRIU).
   */
  beforeResume(step: () => void): void;
  /**
   * Open file `fileId`, which no task holds (it was in flight in a socket
   * queue), inside task `t` by its kind, and return a copy of it in our own
   * process (the task's fd is closed again). The caller closes the copy.
   */
  openInFlight?(t: RestoreTaskHandle, fileId: number): number;
  /** whether some task of the tree holds file `fileId` (it is in a task's fdinfo) */
  isTaskFile?(fileId: number): boolean;
  /**
   * In an afterAllFiles step (every task's fds final): a copy in our own
   * process of file `fileId` as a task holds it; undefined when no task
   * holds it. The caller closes the copy.
   */
  taskFileCopy?(fileId: number): number | undefined;
  /** put our fd `ours` into task `t` (the same open file description); returns its number there */
  installFd?(t: RestoreTaskHandle, ours: number): number;
  /** restore --lazy-pages: where each task's userfaultfd goes (kinds/memory/lazy.ts); undefined: fill everything now */
  lazy?: LazySink;
}

export interface FileKind {
  /** short name for logs */
  readonly name: string;
  /** CRIU fd_types name this kind writes ("REG", "PIPE", ...) */
  readonly type: FileEntry['type'];
  detect(p: FdProbe): boolean;
  /** describe the open file as a file_entry with this id */
  dump(p: FdProbe, id: number, ctx: DumpContext): FileEntry;
  /**
   * The entry of a file the dump meets by path outside any fd (a mapped
   * file, a task's exe, cwd or root), the path as task `pid` sees it; with
   * `unlinked` the path is gone and the file, reachable at `openPath`, is
   * saved with its entry (a ghost; `what` names it in a refusal). Returns
   * the entry's id. One file kind has it (REG), asked through the registry
   * (kinds/index.ts fileByPath).
   */
  byPath?(ctx: DumpContext, path: string, flags: number, pid: number, unlinked?: { openPath: string; what: string }): number;
  /**
   * Entries with the same group key are created together, in one task that
   * every user of any of them descends from (their lowest common ancestor),
   * before that task's children are created, so children inherit them. For
   * a pipe: "pipe:<pipe_id>" for both ends; for a socketpair: both sockets.
   * Without a group an entry is its own group.
   */
  group?(e: FileEntry): string | undefined;
  /**
   * Fill in what must go in once per object after the fds exist (queued
   * bytes, epoll targets, locks, connects), before any task runs. Called
   * once per entry, with `fd` at its final number: for a file of one task,
   * when that task's fds are in place; for a file shared by several tasks,
   * once every task's fds are, in the first task (in dump order) using it.
   */
  finish?(t: RestoreTaskHandle, e: FileEntry, fd: number, ctx: RestoreContext): void;
  /**
   * Re-create the open file inside the task; returns the fd number it got
   * there (the core moves it to the right number and sets FD_CLOEXEC).
   */
  restore(t: RestoreTaskHandle, e: FileEntry, fdi: FdinfoEntry, ctx: RestoreContext): number;
  /**
   * The key --inherit-fd / RPC inherit_fd names this file by, as CRIU's
   * file_desc_ops.name (`pipe:[ino]`, `socket:[ino]`, `tty[rdev:dev]`, a
   * regular file's path without its leading '/'); a file the caller hands
   * over with that key is installed instead of restore(). Absent: such
   * files cannot be inherited.
   */
  inheritKey?(e: FileEntry, ctx: RestoreContext): string | undefined;
  /**
   * `t` has just become a session leader (setsid) and holds the group files
   * made for its descendants; none of its children exists yet. For state of
   * the session its members inherit through fork (the controlling terminal).
   */
  sessionMade?(t: RestoreTaskHandle, ctx: RestoreContext): void;
  /**
   * Tasks (by pid) that need the file to exist while they are created,
   * though they hold no fd of it: the file is then opened in the lowest
   * common ancestor of them and its users before any of them is forked
   * (a pty master, for the session leader that takes the slave as its
   * controlling terminal in sessionMade).
   */
  neededBy?(e: FileEntry, ctx: RestoreContext): readonly number[];
}
