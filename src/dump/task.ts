/**
 * One task of a held tree, dumped: each thread's registers, FPU and core,
 * the resource kinds' per-task fields, its memory, fd table, fs and ids
 * (core-TID, mm-, pagemap-, fdinfo-FILESID, fs-, ids-PID images). A zombie
 * gets CRIU's form: a task core only.
 */
import type { CoreEntry, TaskKobjIdsEntry, FsEntry, FdinfoEntry, PagemapEntry } from '../images/messages.js';
import { logger } from '../log.js';
import { parseStatus, readComm, readCwd, readRoot } from '../proc/index.js';
import { hasOwnNamespace } from './namespaces.js';
import type { DumpStats } from './options.js';
import type { DumpSession } from './context.js';
import { usToNow, type TaskNode } from './tree.js';
import { dumpGpRegs, dumpFpRegs } from './regs.js';
import { addressSpace, dumpThreadCore, type ThreadAnswers } from '../kinds/index.js';
import type { TaskAsked } from './ask.js';
import type { Tracee } from '../infect/tracee.js';
import { dumpFds, socketFileForMapping } from './files.js';
import { fileByPath, RESOURCE_KINDS } from '../kinds/index.js';
import { faultPoint } from '../fault.js';
import type { TaskPids } from './pids.js';
import { TASK_ALIVE, TASK_DEAD, TASK_STOPPED } from '../images/index.js';
import { mark } from '../timeline.js';

const log = logger('dump');
const DELETED = ' (deleted)';


/**
 * The file entries of paths the tree maps or runs (exe, cwd, root, file
 * mappings), one per path and flags; unlinked ones once per inode, with
 * their ghost file.
 */
export class TreeFiles {
  private readonly byPath = new Map<string, number>();
  private readonly ghosts = new Map<string, number>();
  /** `rootPid`: paths are read in the root's mount namespace, which every task shares (a nested one is refused). */
  constructor(private readonly ctx: DumpSession, private readonly rootPid: number) {}

  fileId(path: string, flags: number): number {
    const key = `${flags}:${path}`;
    let id = this.byPath.get(key);
    if (id === undefined) {
      id = fileByPath(this.ctx, path, flags, this.rootPid);
      this.byPath.set(key, id);
    }
    return id;
  }

  ghostFileId(path: string, flags: number, openPath: string, inode: bigint): number {
    const key = `${flags}:${inode}`;
    let id = this.ghosts.get(key);
    if (id === undefined) {
      id = fileByPath(this.ctx, path, flags, this.rootPid, { openPath, what: `mapping of ${path}` });
      this.ghosts.set(key, id);
    }
    return id;
  }
}

/** CRIU's form of a zombie: a core with only the task core (state "dead", the wait status as exit_code) and no other per-task image. */
export function dumpZombie(node: TaskNode, vpid: number, ctx: DumpSession): void {
  const core: CoreEntry = {
    mtype: 'X86_64',
    tc: { task_state: TASK_DEAD, exit_code: node.exitCode, personality: 0, flags: 0, blk_sigset: 0n, comm: zombieComm(node.pid) },
  };
  ctx.saveImage('CORE', vpid, [core]);
}

function zombieComm(pid: number): string {
  try {
    return readComm(pid);
  } catch {
    return '';
  }
}

/** What every task of one dump shares. */
export interface TaskDumpShared {
  onBytes(n: number): void;
  stats: DumpStats;
  treePids: number[];
  /** smaps of the tree's big tasks, being read while it is asked and dumped (smaps-ahead.ts), by pid */
  smaps?: ReadonlyMap<number, Promise<Buffer | undefined>>;
  /** dump --lazy-pages: each task's image id → its pid and the pagemap, for the page server that serves its PE_LAZY pages once the images are written */
  lazy?: Map<number, { pid: number; pagemap: PagemapEntry[] }>;
}

export async function dumpTask(
  node: TaskNode, vp: TaskPids, asked: TaskAsked, ctx: DumpSession, ids: TaskKobjIdsEntry,
  files: TreeFiles, fdinfoWritten: Set<number>, shared: TaskDumpShared,
): Promise<void> {
  const pid = node.pid;
  const fileId = (path: string, flags: number): number => files.fileId(path, flags);
  const ghostFileId = (path: string, flags: number, openPath: string, inode: bigint): number => files.ghostFileId(path, flags, openPath, inode);
  const main = node.threads[0] as Tracee;
  log.info(`dumping task ${pid} (${node.threads.length} thread(s))`);
  const range = asked.range;
  // Per thread: registers, FPU, thread core. /proc status is read once per thread.
  const mainStatus = asked.mainStatus;
  const cores: { tid: number; core: CoreEntry; vtid: number; thread: Tracee; tidAddress: bigint }[] = [];
  node.threads.forEach((t, i) => {
    const status = t === main ? mainStatus : parseStatus(pid, t.tid);
    const th = asked.threads.get(t) as ThreadAnswers;
    const core: CoreEntry = {
      mtype: 'X86_64',
      // thread_info (registers) is filled just before the core is written (below)
      thread_core: dumpThreadCore({ pid, tracee: t, status, answers: th, memo: (key, make) => ctx.memo(key, make) }),
    };
    if (t === main) {
      const tc = asked.tc;
      // A timer aimed at one thread names it as the task sees it.
      for (const pt of tc.timers?.posix ?? []) {
        if (pt.notify_thread_id !== undefined) pt.notify_thread_id = ctx.vpid(pt.notify_thread_id) ?? pt.notify_thread_id;
      }
      if (t.wasStopped) {
        tc.task_state = TASK_STOPPED;
        tc.stop_signo = t.stopSignal;
      }
      core.tc = tc;
    }
    cores.push({ tid: t.tid, core, vtid: vp.vtids[i] ?? t.tid, thread: t, tidAddress: th.tidAddress });
  });
  log.debug(`task ${pid}: thread cores built`);
  mark('task: thread cores built');
  for (const k of RESOURCE_KINDS) k.dumpTask?.({ pid, main, cores, ids }, ctx);
  // Images are named by the pids the tree sees. The FPU state is read one
  // thread at a time as its core is written and dropped after: held for
  // all threads at once, the XSAVE areas as JS values were most of a
  // 1000-thread dump's heap. (No kind looks at fpregs; the threads stay
  // stopped, and injected calls leave their FPU state as it was.)
  for (const { vtid, core, thread, tidAddress } of cores) {
    core.thread_info = { clear_tid_addr: tidAddress, gpregs: dumpGpRegs(thread), fpregs: dumpFpRegs(thread) };
    ctx.saveImage('CORE', vtid, [core]);
    delete core.thread_info;
  }
  log.debug(`task ${pid}: thread cores written`);
  mark('task: resource kinds, cores written');
  faultPoint('dump.task');
  // Its address space (what only the task tells of it was asked in askTree), by the registry's address-space kind.
  const smaps = await shared.smaps?.get(pid);
  const tmw = process.hrtime.bigint();
  const mem = addressSpace().dumpTask({
    pid, imageId: vp.vpid, main, treePids: shared.treePids, exclude: [range], ownIpcNs: hasOwnNamespace(pid, 'ipc'),
    mm: {
      asked: asked.space,
      fileId, ghostFileId, socketFileId: (start, end, path) => socketFileForMapping(ctx, pid, start, end, path, ids.net_ns_id),
    },
    onBytes: shared.onBytes,
    ...(smaps !== undefined ? { smaps } : {}),
  }, ctx);
  log.debug(`task ${pid}: memory dumped`);
  mark('task: memory');
  shared.lazy?.set(vp.vpid, { pid, pagemap: mem.pagemap });
  shared.stats.memwriteTimeUs += usToNow(tmw);
  shared.stats.pagesScanned += mem.pagesScanned;
  shared.stats.pagesWritten += mem.pagesWritten;
  shared.stats.pagesLazy += mem.pagesLazy;
  shared.stats.pagesSkippedParent += mem.pagesSkippedParent;
  faultPoint('dump.memory');
  // Files.
  if (!fdinfoWritten.has(ids.files_id)) {
    fdinfoWritten.add(ids.files_id);
    const fds: FdinfoEntry[] = dumpFds(pid, ctx, ids.net_ns_id, addressSpace().ownFd(pid, ctx));
    ctx.saveImage('FDINFO', ids.files_id, fds);
  }
  const status = mainStatus ?? parseStatus(pid);
  const dirId = (path: string, link: string): number => {
    if (!path.endsWith(DELETED)) return fileId(path, 0);
    const real = path.slice(0, -DELETED.length);
    return fileByPath(ctx, real, 0, pid, { openPath: `/proc/${pid}/${link}`, what: `task ${pid} ${link}` });
  };
  const fs: FsEntry = { cwd_id: dirId(readCwd(pid), 'cwd'), root_id: dirId(readRoot(pid), 'root'), umask: status.umask };
  ctx.saveImage('FS', vp.vpid, [fs]);
  ctx.saveImage('IDS', vp.vpid, [ids]);
  faultPoint('dump.files');
  mark('task: fds, fs, ids');
}
