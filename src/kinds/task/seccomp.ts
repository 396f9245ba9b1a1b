/**
 * Seccomp: per-thread syscall filters (classic BPF programs chained from
 * newest to oldest) or strict mode. Dump reads each thread's chain with
 * PTRACE_SECCOMP_GET_FILTER and its flags with PTRACE_SECCOMP_GET_METADATA,
 * into seccomp.img as CRIU does: one seccomp_entry holding every distinct
 * filter, each naming its older neighbour with `prev`; a thread's core says
 * its mode and the index of its newest filter. Restore installs the chain
 * oldest first inside the thread, at the very end, with the filters
 * suspended for us (PTRACE_O_SUSPEND_SECCOMP) so that our last injected
 * calls are not filtered.
 *
 * Filters go in before the credentials (as in CRIU: installing one without
 * no_new_privs needs CAP_SYS_ADMIN, which the thread still has then);
 * no_new_privs comes back with the credentials (creds.ts).
 * Known limits: identical chains are shared by content, not by kernel
 * identity (as in CRIU: when every thread of a task has the same chain it
 * is installed once with TSYNC); user notification listeners (SECCOMP_FILTER_FLAG_NEW_LISTENER)
 * are not re-created.
 */
import { NR, PTRACE_O, SECCOMP_SET_MODE_STRICT, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC } from '../../sys/index.js';
import { seccompFilter, seccompFilterFlags, setTraceOptions } from '../../infect/ptrace-state.js';
import type { SeccompEntry, SeccompFilter, ThreadCoreEntry } from '../../images/messages.js';
import { stateKey } from '../types.js';
import type { ResourceKind } from '../resource-kind.js';
import { call, type StepHandle, type Steps } from '../steps.js';
import type { DumpThreadView, RestoreThreadView, ThreadKind } from './types.js';
import { CriuTsError } from '../../errors.js';
import { imageFile } from '../../images/index.js';

const MAX_FILTERS = 512;

/**
 * Threads of one task whose chains are the same (by content: the kernel
 * cannot tell us whether they are one chain) get it once, installed in the
 * main thread with SECCOMP_FILTER_FLAG_TSYNC, as CRIU does: then the task
 * can add TSYNC filters later (the kernel refuses TSYNC while threads hold
 * chains that are not one). Returns whether `threads` qualify.
 */
function seccompSharedByThreads(threads: readonly (ThreadCoreEntry | undefined)[]): boolean {
  if (threads.length < 2) return false;
  const first = threads[0];
  const mode = first?.seccomp_mode;
  if (mode !== 'filter' && mode !== 2) return false;
  return threads.every((th) => (th?.seccomp_mode === 'filter' || th?.seccomp_mode === 2) && th.seccomp_filter === first?.seccomp_filter);
}

type SeccompFields = Pick<ThreadCoreEntry, 'seccomp_mode' | 'seccomp_filter'>;

/** Collects the filters of every dumped thread into one seccomp.img entry. */
class SeccompCollector {
  readonly filters: SeccompFilter[] = [];
  private readonly index = new Map<string, number>();

  /** The thread core's seccomp fields for a thread in `mode` (0 off, 1 strict, 2 filter). */
  dumpThread(tid: number, mode: number): SeccompFields {
    if (mode === 0) return {};
    if (mode === 1) return { seccomp_mode: 'strict' };
    const chain: { prog: Buffer; flags: number }[] = [];
    for (let i = 0; i < MAX_FILTERS; i++) {
      const prog = seccompFilter(tid, i);
      if (prog === null) break;
      chain.push({ prog, flags: seccompFilterFlags(tid, i) });
    }
    if (chain.length === 0) throw new CriuTsError('EDUMP', `thread ${tid}: seccomp filters cannot be read`, { tid });
    let prev: number | undefined;
    for (const f of chain.reverse()) {
      const key = `${prev ?? '-'}:${f.flags}:${f.prog.toString('hex')}`;
      let idx = this.index.get(key);
      if (idx === undefined) {
        idx = this.filters.length;
        const e: SeccompFilter = { filter: f.prog };
        if (prev !== undefined) e.prev = prev;
        if (f.flags !== 0) e.flags = f.flags;
        this.filters.push(e);
        this.index.set(key, idx);
      }
      prev = idx;
    }
    return { seccomp_mode: 'filter', seccomp_filter: prev as number };
  }

  entry(): SeccompEntry {
    return this.filters.length > 0 ? { seccomp_filters: this.filters } : {};
  }
}

/** The filters of this dump's threads, for seccomp.img. */
const COLLECTED = stateKey<SeccompCollector>('seccomp:collected');
/** seccomp.img as dumped, loaded before any task exists. */
const IMAGE = stateKey<SeccompEntry | undefined>('seccomp:image');

/** A thread's filter chain in the image, newest first. */
function chainOf(tc: ThreadCoreEntry | undefined, img: SeccompEntry | undefined): SeccompFilter[] {
  const filters = img?.seccomp_filters ?? [];
  const chain: SeccompFilter[] = [];
  for (let i: number | undefined = tc?.seccomp_filter; i !== undefined; ) {
    const f: SeccompFilter | undefined = filters[i];
    if (!f || chain.length > MAX_FILTERS) throw new CriuTsError('EIMAGE', `${imageFile('SECCOMP')}: bad filter chain at index ${i}`, { index: i });
    chain.push(f);
    i = f.prev;
  }
  return chain;
}

const filterMode = (tc: ThreadCoreEntry | undefined): boolean => tc?.seccomp_mode === 'filter' || tc?.seccomp_mode === 2;

/**
 * Install a thread's seccomp state, with the filters suspended for our
 * later calls. A chain every thread shares goes in once, from the main
 * thread (which the core runs after the others), with TSYNC.
 */
function* restoreSeccomp(sh: StepHandle, th: RestoreThreadView): Steps {
  const tc = th.core.thread_core;
  const mode = tc?.seccomp_mode;
  if (mode === undefined || mode === 'disabled' || mode === 0) return;
  const tsync = seccompSharedByThreads(th.threadCores);
  if (tsync && !th.main) return;
  setTraceOptions(sh.tid, th.traceOptions | PTRACE_O.SUSPEND_SECCOMP);
  if (mode === 'strict' || mode === 1) {
    yield* call('seccomp(STRICT)', NR.seccomp, SECCOMP_SET_MODE_STRICT, 0, 0);
    return;
  }
  // Installed while the thread still has criu-ts's capabilities (CAP_SYS_ADMIN),
  // so no_new_privs is not needed here: the credentials set it after, as dumped.
  for (const f of chainOf(tc, th.ctx.state(IMAGE, () => undefined)).reverse()) {
    const prog = sh.putBytes(f.filter);
    const fprog = Buffer.alloc(16);
    fprog.writeUInt16LE(f.filter.length / 8, 0);
    fprog.writeBigUInt64LE(prog, 8);
    yield* call('seccomp(FILTER)', NR.seccomp, SECCOMP_SET_MODE_FILTER, (f.flags ?? 0) | (tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0), sh.putBytes(fprog));
  }
}

/**
 * Scratch bytes a filter's two arguments need so that the second never
 * lands on the first (the program, then its sock_fprog); a chain with a
 * larger program runs in its thread alone.
 */
function restorePutBytes(th: RestoreThreadView): number {
  const tc = th.core.thread_core;
  if (!filterMode(tc)) return 0;
  const longest = Math.max(0, ...chainOf(tc, th.ctx.state(IMAGE, () => undefined)).map((f) => f.filter.length));
  return ((longest + 15) & ~15) + 32;
}

/** Per thread: its mode and chain; installed at its final point, before the credentials. */
export const seccompThreadKind: ThreadKind<SeccompFields> = {
  name: 'seccomp',
  dump: (th: DumpThreadView) => th.memo(COLLECTED, () => new SeccompCollector()).dumpThread(th.tracee.tid, th.status.seccomp),
  restore: { final: { steps: restoreSeccomp, putBytes: restorePutBytes } },
};

/** Per tree: seccomp.img, one entry holding every distinct filter of the tree (written even empty, as CRIU does). */
export const seccompTreeKind: ResourceKind = {
  name: 'seccomp',
  dumpTree(_tree, ctx) {
    const collected = ctx.memo(COLLECTED, () => new SeccompCollector());
    ctx.atEnd(() => ctx.saveImage('SECCOMP', undefined, [collected.entry()]));
  },
  prepareRestore(_tree, ctx) {
    ctx.state(IMAGE, () => ctx.image('SECCOMP')?.entries[0]);
  },
};
