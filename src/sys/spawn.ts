/**
 * Starting a program of our own (the guardian's shell, a `sleep` to seize)
 * without copying Node's address space. node:child_process forks the whole
 * Node process (page tables of 50-60 MiB, torn down again at the exec) and
 * waits for the exec: 5-10 ms per start here, more under load and the more
 * memory criu-ts holds. glibc's posix_spawn runs the child on our memory
 * (CLONE_VM|CLONE_VFORK) until its exec: about 0.1 ms.
 *
 * The child is ours, not libuv's: nothing reaps it unless we do.
 * killAndReap()/reapWhenGone() collect it (wait4 by pid, never -1) once
 * it can no longer stop for ptrace: a task we trace must be let go first,
 * or wait4 would take its ptrace stops away from the tracer.
 */
import { fstatSync } from 'node:fs';
import { addr, libcFunction, sysTry } from './libc.js';
import { NR } from './nr.js';
import { SyscallError } from './error.js';
import { kill } from './process.js';
import { O_RDWR } from './fcntl.js';
import { WNOHANG } from './ptrace.js';

// <spawn.h> flags (glibc)
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
/** posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 on x86_64 glibc: room to spare */
const OPAQUE_BYTES = 512;
/** sigset_t: 1024 bits */
const SIGSET_BYTES = 128;

const fn = (decl: string) => libcFunction(decl);

export interface SpawnOptions {
  /** fd of ours for the child's stdin/stdout/stderr; undefined: /dev/null */
  stdin?: number;
  stdout?: number;
  stderr?: number;
  /** a session of its own (setsid), as child_process's `detached` */
  setsid?: boolean;
  /** the child's environment (default: ours) */
  env?: NodeJS.ProcessEnv;
}

/**
 * Start `path` with `argv` (argv[0] included); returns its pid once it
 * runs the program. Every signal starts at its default action and
 * unblocked (as child_process does), and no fd of ours but the three
 * given reaches it. Throws SyscallError('posix_spawn') when the program
 * cannot be run.
 */
export function spawnProgram(path: string, argv: readonly string[], o: SpawnOptions = {}): number {
  const call = prepareSpawn(argv, o);
  try {
    const r = fn(POSIX_SPAWN)(call.pid, path, call.actions, call.attr, call.argv, call.envp) as number;
    if (r !== 0) throw new SyscallError('posix_spawn', r);
    return call.pid[0] as number;
  } finally {
    call.destroy();
  }
}

/**
 * spawnProgram on one of koffi's worker threads: the vfork child borrows
 * that thread's memory and stack until its exec while ours goes on (a
 * restore loads and checks its images meanwhile). Under load the child
 * may wait several milliseconds for a CPU before it can exec; the thread
 * that started it waits, not us.
 */
export function spawnProgramAsync(path: string, argv: readonly string[], o: SpawnOptions = {}): Promise<number> {
  const call = prepareSpawn(argv, o);
  return new Promise<number>((resolve, reject) => {
    try {
      (fn(POSIX_SPAWN) as unknown as { async: (...a: unknown[]) => void }).async(call.pid, path, call.actions, call.attr, call.argv, call.envp, (err: unknown, r: number) => {
        call.destroy();
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else if (r !== 0) reject(new SyscallError('posix_spawn', r));
        else resolve(call.pid[0] as number);
      });
    } catch (e) {
      call.destroy();
      reject(e instanceof Error ? e : new Error(String(e)));
    }
  });
}

const POSIX_SPAWN = 'int posix_spawn(_Out_ int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)';

/** posix_spawn's arguments, made ready (its file actions and attributes initialised); destroy() once the call returned. */
function prepareSpawn(argv: readonly string[], o: SpawnOptions): {
  pid: number[]; actions: Buffer; attr: Buffer; argv: (string | null)[]; envp: (string | null)[]; destroy: () => void;
} {
  const actions = Buffer.alloc(OPAQUE_BYTES);
  const attr = Buffer.alloc(OPAQUE_BYTES);
  let r = fn('int posix_spawn_file_actions_init(void *fa)')(actions) as number;
  if (r !== 0) throw new SyscallError('posix_spawn_file_actions_init', r);
  fn('int posix_spawnattr_init(void *attr)')(attr);
  const destroy = (): void => {
    fn('int posix_spawnattr_destroy(void *attr)')(attr);
    fn('int posix_spawn_file_actions_destroy(void *fa)')(actions);
  };
  try {
    const dup2 = fn('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)');
    const open = fn('int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int oflag, uint32_t mode)');
    [o.stdin, o.stdout, o.stderr].forEach((fd, i) => {
      r = fd === undefined ? open(actions, i, '/dev/null', O_RDWR, 0) as number : dup2(actions, fd, i) as number;
      if (r !== 0) throw new SyscallError('posix_spawn_file_actions', r);
    });
    r = fn('int posix_spawn_file_actions_addclosefrom_np(void *fa, int from)')(actions, 3) as number;
    if (r !== 0) throw new SyscallError('posix_spawn_file_actions_addclosefrom_np', r);
    const all = Buffer.alloc(SIGSET_BYTES, 0xff);
    const none = Buffer.alloc(SIGSET_BYTES);
    fn('int posix_spawnattr_setsigdefault(void *attr, const void *set)')(attr, all);
    fn('int posix_spawnattr_setsigmask(void *attr, const void *set)')(attr, none);
    const flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (o.setsid ? POSIX_SPAWN_SETSID : 0);
    fn('int posix_spawnattr_setflags(void *attr, short flags)')(attr, flags);
  } catch (e) {
    destroy();
    throw e;
  }
  const envp = Object.entries(o.env ?? process.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  return { pid: [0], actions, attr, argv: [...argv, null], envp: [...envp, null], destroy };
}

const unreaped = new Set<number>();
let exitHooked = false;

/**
 * At exit, what is still ending is waited for (up to a second): left
 * unreaped, it would become a zombie child of whoever adopts our orphans
 * (runc, a test harness, any child subreaper), a process it never made.
 */
function reapBeforeExit(): void {
  for (let waited = 0; !reapSome() && waited < 1000; waited++) sysTry(NR.nanosleep, addr(ONE_MS), 0);
}
const ONE_MS = (() => {
  const ts = Buffer.alloc(16);
  ts.writeBigInt64LE(1_000_000n, 8);
  return ts;
})();
let timer: ReturnType<typeof setInterval> | undefined;
const status = Buffer.alloc(4);

/** Collect whatever of ours has ended; true when none is left to wait for. */
function reapSome(): boolean {
  for (const pid of unreaped) {
    const r = sysTry(NR.wait4, pid, addr(status), WNOHANG, 0);
    // Collected, or not ours to collect (ECHILD); a ptrace stop reported
    // on its way out (a traced child killed in a stop) is not its end.
    if (r < 0 || (r === pid && (status.readInt32LE(0) & 0xff) !== 0x7f)) unreaped.delete(pid);
  }
  return unreaped.size === 0;
}

/**
 * Collect child `pid` (from spawnProgram) once it has ended: polled from a
 * timer that never keeps the process alive. Only for a child that no
 * longer stops for ptrace (never traced, or let go).
 */
export function reapWhenGone(pid: number): void {
  unreaped.add(pid);
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', reapBeforeExit);
  }
  if (reapSome() || timer !== undefined) return;
  timer = setInterval(() => {
    if (reapSome()) {
      clearInterval(timer);
      timer = undefined;
    }
  }, 10);
  timer.unref();
}

/** SIGKILL child `pid` (from spawnProgram) and collect it: see reapWhenGone. */
export function killAndReap(pid: number): void {
  try {
    kill(pid, 9);
  } catch {
    // gone already: still ours to collect
  }
  reapWhenGone(pid);
}

/** Whether fd `fd` of ours is open (a child's stderr is ours only when we have one). */
export function isOpenFd(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}
