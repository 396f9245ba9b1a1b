/**
 * The guardian: what puts things back when criu-ts itself dies (SIGKILL,
 * SIGTERM, SIGINT, SIGHUP, a crash) in the middle of a dump, a pre-dump or a restore.
 *
 * Threads of a dump target cure themselves (sigframe.ts): their registers,
 * FPU state and signal mask come back by themselves the moment the kernel
 * lets them go. What they cannot undo is our scratch mapping; and a killed
 * restore must leave no task and no file behind. So before the first task
 * is touched, criu-ts starts a guardian (a shell that only reads a pipe) and
 * tells it, line by line, what it leaves in the system:
 *
 *   S pid start addr size    a scratch mapping (pid and its start time)
 *   F tid slot               the thread's self-cure frame at slot
 *   U pid                    the scratch mapping is gone again
 *   T pid start fd ino       a memory tracker (userfaultfd) this run made or
 *                            scanned: closed again if criu-ts dies, as a
 *                            failed run closes it (kinds/memory/incremental.ts)
 *   N pid start ino,...      a tracker is about to be made in pid, which holds
 *                            userfaultfds of these inodes: any other is ours
 *   X pid start              a dumped task the dump is killing (its images
 *                            are complete): if criu-ts dies half-way through
 *                            the kill, the guardian finishes it
 *   P pid start              a dumped task the dump is leaving stopped
 *                            (--leave-stopped, its images complete): if
 *                            criu-ts dies half-way through the release, the
 *                            guardian puts it back and stops it, so that the
 *                            whole tree ends stopped as asked, not part of it
 *   K pid start              a task this restore created
 *   R                        the restored tasks are released (not ours any more)
 *   G path                   a file this restore created
 *   O, o, C, W               a socket in TCP repair mode, a command that
 *                            takes the network lock away, the lock's marker
 *                            (guardian-undo.ts)
 *   done                     criu-ts finished: nothing to do
 *
 * At EOF without "done" (criu-ts is gone), the shell starts node on this
 * module's guardianMain(): it seizes each dump target again, puts back any
 * thread that was stopped before it could run its sigreturn, unmaps the
 * scratch area, closes the memory trackers the run made or scanned, lets
 * go; it kills the tasks of an unfinished restore and
 * removes its files, and says so in one line on stderr. The shell costs
 * about a millisecond per dump; node starts only when needed. It runs in
 * its own session and ignores SIGINT/SIGTERM/SIGHUP, so the Ctrl-C or the
 * hangup that stops criu-ts does not stop it.
 */
import { closeSync, writeSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';
import { isOpenFd, pipe2, reapWhenGone, spawnProgram, spawnProgramAsync, O_CLOEXEC } from '../sys/index.js';
import { setTraceeObserver } from './observer.js';
import { closeTrackers, same, startOf, type MakingLine, type TrackerLine } from './guardian-trackers.js';
import { emptyUndo, parseUndoLine, removeRestoreFile, undoRun, type UndoPlan } from './guardian-undo.js';
import { cureProcess } from './guardian-cure.js';
import { nodeEntry } from '../node-start.js';

const log = logger('guardian');

/** Node's part: guardianMain() of this module, bundled or not (node-start.ts). */
const GUARDIAN_ENTRY = nodeEntry('guardianMain');

/**
 * The shell part: collect the lines; at EOF without "done", hand them to
 * node. The first 64 lines are read by the shell's own `read` (a read(2)
 * per byte: a dump or restore of a few tasks sends a few hundred bytes);
 * past them, `cat` takes the rest. `s=$(cat)` alone cost a fork and an
 * exec of cat in every dump and restore, 5-7 ms of CPU on this machine
 * (docs/performance.md, "Start-up, session 14"), where a big tree's
 * thousands of lines would cost more read(2) calls than that. Trailing
 * newlines are dropped as $(cat) drops them.
 */
export const GUARDIAN_SCRIPT = `trap '' INT TERM HUP
s= l= n=0
while [ $n -lt 64 ] && IFS= read -r l; do s="$s$l
"; l= n=$((n+1)); done
if [ $n -lt 64 ]; then s="$s$l"; else s="$s$(cat)"; fi
while :; do case "$s" in *"
") s=\${s%?} ;; *) break ;; esac; done
case "$s" in done|*"
done") exit 0 ;; esac
printf '%s\\n' "$s" | "$0" -e '${GUARDIAN_ENTRY}' "$1"`;

let current: Guardian | undefined;

/** The running guardian of this dump or restore, if any (Tracee reports to it). */
export function guardian(): Guardian | undefined {
  return current;
}

export class Guardian {
  private fd: number;
  /** the shell's pid: ours to collect once it has read "done"; undefined while its spawn is under way */
  private pid: number | undefined;
  /** the spawn under way (start(true)): settled with the pid or why there is none */
  private spawning: Promise<number | Error> | undefined;

  private constructor(fd: number, pid: number | undefined) {
    this.fd = fd;
    this.pid = pid;
  }

  /**
   * Start one for a dump, pre-dump or restore. CRIU_TS_GUARDIAN=0 turns it
   * off (then a kill leaks the scratch area). `ahead`: the shell is spawned
   * on another thread, and what is sent meanwhile waits in the pipe, which
   * exists already (it reads it all at our end); the caller awaits ready()
   * before it leaves anything behind.
   */
  static start(ahead = false): Guardian | undefined {
    if (process.env['CRIU_TS_GUARDIAN'] === '0') return undefined;
    if (current) return current;
    const [r, w] = pipe2(O_CLOEXEC);
    // CRIU_TS_FAULT is for criu-ts: the guardian that cleans up after a fault must not meet it too
    // (a kill point it passed through would kill it half-way through putting a task back).
    const env = { ...process.env };
    delete env['CRIU_TS_FAULT'];
    // posix_spawn (sys/spawn.ts): a fork of Node for a shell cost 5-10 ms of every dump and restore.
    // Its one line of report goes to our stderr, when we have one.
    const stderr = isOpenFd(2) ? 2 : undefined;
    const argv = ['/bin/sh', '-c', GUARDIAN_SCRIPT, process.execPath, import.meta.url];
    const how = { stdin: r, ...(stderr !== undefined ? { stderr } : {}), setsid: true, env };
    const failed = (e: unknown): CriuTsError => new CriuTsError('EINTERNAL', `cannot start the guardian: ${(e as Error).message}`, {}, e);
    let g: Guardian;
    if (ahead) {
      g = new Guardian(w, undefined);
      g.spawning = spawnProgramAsync('/bin/sh', argv, how).then(
        (pid) => {
          g.pid = pid;
          // Done meanwhile: collected once it has read "done".
          if (g.fd < 0) reapWhenGone(pid);
          return pid;
        },
        (e: unknown) => failed(e),
      ).finally(() => closeSync(r));
    } else {
      try {
        g = new Guardian(w, spawnProgram('/bin/sh', argv, how));
      } catch (e) {
        closeSync(w);
        throw failed(e);
      } finally {
        closeSync(r);
      }
    }
    current = g;
    setTraceeObserver(current);
    return current;
  }

  /** The shell runs (start(true)); throws, with the guardian closed, if it could not be started. */
  async ready(): Promise<void> {
    const r = await this.spawning;
    if (r instanceof Error) {
      this.close();
      throw r;
    }
  }

  /** lines held back by batch(), sent as one write when it ends */
  private held: string[] | undefined;
  /** start times sent already (a held task's pid is not reused while we hold it) */
  private readonly starts = new Map<number, string>();

  /**
   * Run `fn` with what it tells the guardian sent in one write at its end
   * (each write wakes the guardian's shell: a tree of 100 processes told of
   * its scratch areas, frames and kills 300 times). For messages that only
   * need to be there before what follows `fn`, not during it.
   */
  batch<T>(fn: () => T): T {
    if (this.held !== undefined) return fn();
    this.held = [];
    try {
      return fn();
    } finally {
      const lines = this.held;
      this.held = undefined;
      if (lines.length > 0) this.send(lines.join('\n'));
    }
  }

  private startOf(pid: number): string {
    const known = this.starts.get(pid);
    if (known !== undefined) return known;
    const s = startOf(pid);
    if (s !== '0') this.starts.set(pid, s);
    return s;
  }

  private send(line: string): void {
    if (this.held !== undefined) {
      this.held.push(line);
      return;
    }
    if (this.fd < 0) return;
    try {
      writeSync(this.fd, line + '\n');
    } catch (e) {
      log.warn(`guardian gone: ${(e as Error).message}`);
      this.close();
    }
  }

  private close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      if (this.pid !== undefined) reapWhenGone(this.pid);
    }
    this.fd = -1;
    if (current === this) {
      current = undefined;
      setTraceeObserver(undefined);
    }
  }

  scratch(pid: number, addr: bigint, size: number): void {
    this.send(`S ${pid} ${this.startOf(pid)} ${addr.toString(16)} ${size}`);
  }
  frame(tid: number, slot: bigint): void {
    this.send(`F ${tid} ${slot.toString(16)}`);
  }
  frames(list: readonly { tid: number; slot: bigint }[]): void {
    if (list.length > 0) this.send(list.map((f) => `F ${f.tid} ${f.slot.toString(16)}`).join('\n'));
  }
  unmapped(pid: number): void {
    this.send(`U ${pid}`);
  }
  /** A memory tracker this run made or scanned (fd `fd` of `pid`, that inode): closed if we die. */
  tracker(pid: number, fd: number, ino: bigint): void {
    this.send(`T ${pid} ${this.startOf(pid)} ${fd} ${ino}`);
  }
  trackerMaking(pid: number, before: readonly bigint[]): void {
    this.send(`N ${pid} ${this.startOf(pid)} ${before.join(',') || '-'}`);
  }
  task(pid: number): void {
    this.send(`K ${pid} ${this.startOf(pid)}`);
  }
  /** A dumped task about to be killed by the dump (its images complete): killed by the guardian if criu-ts dies first. */
  doomed(pid: number): void {
    this.send(`X ${pid} ${this.startOf(pid)}`);
  }
  /** A dumped task about to be left stopped (its images complete): stopped by the guardian if criu-ts dies first. */
  stopping(pid: number): void {
    this.send(`P ${pid} ${this.startOf(pid)}`);
  }
  released(): void {
    this.send('R');
  }
  file(path: string): void {
    if (!path.includes('\n')) this.send(`G ${path}`);
  }
  /** A file of file() that criu-ts removed itself: a file made later under its name is not ours. */
  fileGone(path: string): void {
    if (!path.includes('\n')) this.send(`g ${path}`);
  }
  /** Socket fd `fd` of `pid` (inode `ino`) goes into TCP repair mode: taken out (SO_REUSEADDR `reuse` back) if we die and the task lives on. */
  repairing(pid: number, fd: number, ino: bigint | number, reuse: number): void {
    this.send(`O ${pid} ${this.startOf(pid)} ${fd} ${ino} ${reuse}`);
  }
  /** That socket is out of repair mode again. */
  repaired(pid: number, fd: number): void {
    this.send(`o ${pid} ${fd}`);
  }
  /** A program to run if we die while the tree lives on (it takes back something of ours outside the tasks: the network lock). */
  undo(argv: readonly string[]): void {
    if (!argv.some((a) => a.includes('\n'))) this.send(`C ${JSON.stringify(argv)}`);
  }
  /** A file of this run, removed if we die (after the undo programs ran). */
  scrap(path: string): void {
    if (!path.includes('\n')) this.send(`W ${path}`);
  }

  /** criu-ts is done: the guardian exits without doing anything. */
  done(): void {
    this.send('done');
    this.close();
  }
}

/**
 * Send `sig` to each task that is still the process the plan named (its
 * pid and start time: a pid reused since is left alone); returns those
 * signalled. A task gone already needs nothing.
 */
function signalSame(tasks: ReadonlyMap<number, string>, sig: 'SIGSTOP' | 'SIGKILL'): number[] {
  const done: number[] = [];
  for (const [pid, start] of tasks) {
    if (!same(pid, start)) continue;
    try {
      process.kill(pid, sig);
      done.push(pid);
    } catch {
      // gone
    }
  }
  return done;
}

// ---- the guardian process ----

interface Plan {
  scratch: Map<number, { start: string; addr: bigint; size: number }>;
  frames: Map<number, bigint>;
  tasks: Map<number, string>;
  files: string[];
  trackers: TrackerLine[];
  /** pid → its start time and the userfaultfd inodes it held before we made a tracker */
  making: Map<number, MakingLine>;
  /** dumped tasks the dump was killing: pid → start time */
  doomed: Map<number, string>;
  /** dumped tasks the dump was leaving stopped: pid → start time */
  stopping: Map<number, string>;
  /** sockets in repair mode, the network lock (guardian-undo.ts) */
  undo: UndoPlan;
}

function parsePlan(text: string): Plan {
  const p: Plan = { scratch: new Map(), frames: new Map(), tasks: new Map(), files: [], trackers: [], making: new Map(), doomed: new Map(), stopping: new Map(), undo: emptyUndo() };
  for (const line of text.split('\n')) {
    if (parseUndoLine(p.undo, line)) continue;
    const [k, a = '', b = '', c = '', d = ''] = line.split(' ');
    if (k === 'S') p.scratch.set(Number(a), { start: b, addr: BigInt('0x' + c), size: Number(d) });
    else if (k === 'F') p.frames.set(Number(a), BigInt('0x' + b));
    else if (k === 'U') p.scratch.delete(Number(a));
    else if (k === 'K') p.tasks.set(Number(a), b);
    else if (k === 'X') p.doomed.set(Number(a), b);
    else if (k === 'P') p.stopping.set(Number(a), b);
    else if (k === 'R') p.tasks.clear();
    else if (k === 'G') p.files.push(line.slice(2));
    else if (k === 'g') p.files = p.files.filter((f) => f !== line.slice(2));
    else if (k === 'T') p.trackers.push({ pid: Number(a), start: b, fd: Number(c), ino: BigInt(d) });
    else if (k === 'N' && !p.making.has(Number(a))) p.making.set(Number(a), { start: b, before: new Set(c === '-' ? [] : c.split(',').map(BigInt)) });
  }
  return p;
}


/** Entry of the guardian's node process: stdin holds the lines criu-ts sent before it died. */
export async function guardianMain(): Promise<void> {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => undefined);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const plan = parsePlan(Buffer.concat(chunks).toString('utf8'));
  const said: string[] = [];
  // First, while the threads put themselves back: a tree that runs on gets
  // its connections out of repair mode and the network lock taken away.
  said.push(...undoRun(plan.undo, plan.doomed.size === 0));
  // A dump that was killing its tree (images complete, the kill under way, some
  // tasks dead already): the rest would only run on broken. Finish the kill.
  const killedTree = new Set(signalSame(plan.doomed, 'SIGKILL'));
  if (killedTree.size > 0) said.push(`the dump was killing its tree (its images are complete): ${killedTree.size} task(s) of it killed`);
  let cured = 0;
  for (const [pid, s] of plan.scratch) {
    if (killedTree.has(pid)) continue;
    try {
      if (cureProcess(pid, s, plan.frames)) cured++;
    } catch (e) {
      said.push(`task ${pid} not put back entirely: ${(e as Error).message}`);
    }
  }
  if (cured > 0) said.push(`${cured} dumped task(s) put back as they were`);
  let closed = 0;
  for (const pid of new Set([...plan.trackers.map((x) => x.pid), ...plan.making.keys()])) {
    if (killedTree.has(pid)) continue;
    try {
      closed += closeTrackers(pid, plan.trackers, plan.making);
    } catch (e) {
      said.push(`task ${pid}: memory tracker not closed: ${(e as Error).message}`);
    }
  }
  if (closed > 0) said.push(`${closed} memory tracker(s) of the interrupted run closed`);
  // A dump that was leaving its tree stopped (images complete, some tasks
  // released stopped already): the rest, put back above, are stopped too.
  const stopped = signalSame(plan.stopping, 'SIGSTOP').length;
  if (stopped > 0) said.push(`the dump was leaving its tree stopped (its images are complete): ${stopped} task(s) of it stopped`);
  // A task gone already was killed by the kernel with us (PTRACE_O_EXITKILL).
  const killed = signalSame(plan.tasks, 'SIGKILL').length;
  if (killed > 0) said.push(`${killed} half-restored task(s) killed`);
  for (const f of plan.files) removeRestoreFile(f);
  if (plan.files.length > 0) said.push(`${plan.files.length} restore file(s) removed`);
  const line = `criu-ts: interrupted${said.length > 0 ? '; ' + said.join('; ') : ''}\n`;
  try {
    writeSync(2, line);
  } catch {
    // no terminal any more (SIGHUP)
  }
}
