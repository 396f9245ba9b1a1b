/**
 * Restore orchestration (see docs/architecture.md): read the images, create
 * each task with its exact pid by injecting clone3 into a stub, rebuild its
 * memory, files and state through injected syscalls, set the registers and
 * let it go. Any failure kills every task created so far: nothing stays.
 */
import { writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import {
  NR, waitPid, __WALL, ptraceGetRseqConfig, ptraceSetSigmask, decodeGpRegs, encodeGpRegs, setGpRegsRaw,
  GP_REG_NAMES, type GpRegs, pidExists,
} from '../sys/index.js';
import type { RestoreOptions, RestoreResult } from '../api/options.js';
import type { CoreEntry } from '../images/messages.js';
import type { RestoreTaskHandle, RestoreFilesContext } from '../kinds/index.js';
import { Tracee } from '../infect/tracee.js';
import { loadDump, type DumpImages, type TaskImages } from './images.js';
import { startStub, cloneWithPid, disposeStub, type Stub } from './stub.js';
import { prepareAddressSpace, restoreMemory, restoreMmFields, SCRATCH_BYTES } from '../kinds/memory/restore.js';
import { restoreFds } from './files.js';
import {
  restoreSigactions, restoreItimers, restoreRlimits, restoreTaskMisc, restoreThreadState, restoreFpu, restoreCreds, restorePendingSignals,
} from './task-state.js';
import { makeProgress } from '../progress.js';

const log = logger('restore');
const AT_FDCWD = -100;

/** A RestoreTaskHandle over a Tracee whose scratch is a bump-allocated ring. */
function handleFor(pid: number, tracee: Tracee): RestoreTaskHandle {
  let off = 0;
  const put = (b: Buffer): bigint => {
    const len = (b.length + 15) & ~15;
    if (len > SCRATCH_BYTES) throw new CriuTsError('ERESTORE', `argument of ${b.length} bytes does not fit the scratch area`, {});
    if (off + len > SCRATCH_BYTES) off = 0;
    const a = tracee.scratchAddr + BigInt(off);
    tracee.writeMem(a, b);
    off += len;
    return a;
  };
  return {
    pid,
    tracee,
    putBytes: put,
    putString: (s) => put(Buffer.from(`${s}\0`)),
    syscall: (name, nr, ...args) => tracee.syscall(name, nr, ...args),
  };
}

function coreRegs(core: CoreEntry): GpRegs {
  const g = core.thread_info?.gpregs;
  if (!g) throw new CriuTsError('EIMAGE', 'core image without x86_64 registers', {});
  const out = {} as GpRegs;
  for (const n of GP_REG_NAMES) out[n] = (g as unknown as Record<string, bigint>)[n] ?? 0n;
  return out;
}

interface Created {
  pid: number;
  tracee: Tracee;
}

export async function restoreTree(opts: RestoreOptions): Promise<RestoreResult> {
  const dir = resolve(opts.imagesDir ?? '.');
  const img = loadDump(dir);
  if (img.tasks.length > 1) throw new CriuTsError('EUNSUPPORTED', 'restoring more than one process is not supported yet', {});
  for (const t of img.tasks) {
    if ((t.pstree.threads?.length ?? 1) > 1) throw new CriuTsError('EUNSUPPORTED', `task ${t.pstree.pid} has several threads: not supported yet`, {});
    if (pidExists(t.pstree.pid)) throw new CriuTsError('ERESTORE', `pid ${t.pstree.pid} is already in use`, { pid: t.pstree.pid });
  }
  const progress = makeProgress('restore', opts.progress ?? true);
  const created: Created[] = [];
  let stub: Stub | undefined;
  try {
    stub = startStub();
    const filesCtx: RestoreFilesContext = {
      fileById: (id) => img.files.get(id),
      imagesDir: dir,
      opts: { shellJob: opts.shellJob ?? false, extUnixSk: opts.extUnixSk ?? false },
      shared: new Map(),
      provide: () => {},
    };
    let done = 0;
    for (const task of img.tasks) {
      progress.tasks(done, img.tasks.length);
      const tracee = cloneWithPid(stub.tracee, task.pstree.pid);
      created.push({ pid: task.pstree.pid, tracee });
      restoreTask(task, tracee, img, filesCtx, opts, (n) => progress.bytes(n));
      done++;
    }
    progress.tasks(done, img.tasks.length);
    disposeStub(stub);
    stub = undefined;
    // Everything is in place: let the tasks run (or stay stopped).
    for (const c of created) c.tracee.detach();
  } catch (e) {
    progress.done();
    for (const c of created) killQuiet(c.pid);
    if (stub) {
      try { disposeStub(stub); } catch { /* gone */ }
    }
    throw e;
  }
  progress.done();
  const root = created[0]?.pid ?? 0;
  if (opts.pidfile) {
    const p = isAbsolute(opts.pidfile) ? opts.pidfile : join(resolve(opts.workDir ?? dir), opts.pidfile);
    writeFileSync(p, String(root));
  }
  log.info(`restored ${created.length} task(s), root ${root}`);
  return { pid: root, pids: created.map((c) => c.pid) };
}

function killQuiet(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  try {
    for (;;) {
      const st = waitPid(pid, __WALL);
      if (st === null || st.exited || st.signaled) return;
    }
  } catch {
    // not ours to reap
  }
}

function restoreTask(task: TaskImages, tracee: Tracee, img: DumpImages, filesCtx: RestoreFilesContext, opts: RestoreOptions, _onBytes: (n: number) => void): void {
  const pid = task.pstree.pid;
  const h = handleFor(pid, tracee);
  const main = task.cores[0];
  const tc = main?.tc;
  if (!main || !tc) throw new CriuTsError('EIMAGE', `core-${pid}.img has no task core`, { pid });
  log.info(`restoring task ${pid}`);
  let rseq: { ptr: bigint; len: number; sig: number } | undefined;
  try {
    const r = ptraceGetRseqConfig(pid);
    rseq = { ptr: r.rseqAbiPointer, len: r.rseqAbiSize, sig: r.signature };
  } catch {
    rseq = undefined;
  }
  // Session and group first, while the task is still a plain child of the stub.
  if (task.pstree.sid === pid) h.syscall('setsid', NR.setsid);
  else if (task.pstree.pgid === pid) h.syscall('setpgid', NR.setpgid, 0, 0);
  prepareAddressSpace(h, task.mm, rseq);
  restoreMemory(h, task.mm, task.pagemap, task.pagesId, { imagesDir: img.dir, fileById: (id) => img.files.get(id) });
  restoreMmFields(h, task.mm, { imagesDir: img.dir, fileById: (id) => img.files.get(id) });
  restoreFds(h, task.fds, filesCtx);
  const cwd = img.files.get(task.fs.cwd_id)?.reg?.name;
  const root = img.files.get(task.fs.root_id)?.reg?.name;
  if (root && root !== '/') {
    h.syscall('chroot', NR.chroot, h.putString(root));
  }
  if (cwd) h.syscall(`chdir ${cwd}`, NR.chdir, h.putString(cwd));
  if (task.fs.umask !== undefined) h.syscall('umask', NR.umask, task.fs.umask);
  restoreSigactions(h, tc);
  restoreItimers(h, tc);
  restoreRlimits(h, tc);
  restoreTaskMisc(h, tc);
  const th = main.thread_core;
  if (th) restoreThreadState(h, th, main.thread_info?.clear_tid_addr ?? 0n, tc.comm);
  const fp = main.thread_info?.fpregs;
  if (fp) restoreFpu(pid, fp);
  ptraceSetSigmask(pid, ~0n);
  restorePendingSignals(h, pid, (tc.signals_s?.signals ?? []).map((x) => x.siginfo), (th?.signals_p?.signals ?? []).map((x) => x.siginfo));
  restoreCreds(h, th?.creds);
  // Last injected call: drop the scratch area. Then the dumped registers.
  tracee.unmapScratch();
  const regs = coreRegs(main);
  regs.orig_ax = BigInt.asUintN(64, -1n);
  setGpRegsRaw(pid, encodeGpRegs(regs));
  log.debug(`task ${pid}: final ip 0x${regs.ip.toString(16)} read back 0x${decodeGpRegs(tracee.currentRegs()).ip.toString(16)}`);
  ptraceSetSigmask(pid, th?.blk_sigset ?? tc.blk_sigset);
  void opts;
  void decodeGpRegs;
  void AT_FDCWD;
}

/** Wait for a restored root (our child through the subreaper); returns its status as a shell would. */
export function waitForRoot(pid: number): number {
  for (;;) {
    const st = waitPid(pid, __WALL);
    if (st === null) continue;
    if (st.exited) return st.exitCode;
    if (st.signaled) return 128 + st.termSig;
  }
}
