/**
 * The lazy-pages watchdog: what keeps a lazily restored task from reading
 * zeros, or waiting forever, when the lazy-pages daemon dies.
 *
 * Kernel facts (fs/userfaultfd.c): when the last reference to a uffd goes,
 * its VMAs are unregistered and its blocked faults retry; a page that was
 * never copied then faults in as a zero page, silently. So the daemon must
 * not hold the only reference. Each uffd it gets is also sent over a
 * socketpair whose other end belongs to this watchdog, a shell that never
 * reads it: a descriptor queued in a socket keeps its file alive for as
 * long as the receiving socket exists. The daemon tells the shell, line by
 * line on a pipe, the pids it serves (`P pid`) and, at the end, `done`.
 *
 * At EOF without `done` (the daemon died or failed), the shell sends
 * SIGBUS to every task it was told of and their descendants (a fork of a
 * lazy task is lazy too), SIGKILL a second later to any still there (a
 * task that handles SIGBUS would fault again and wait), says so in one
 * line on stderr and exits; its socket end goes with it, and with it the
 * last reference to each uffd. The tasks fail visibly; none runs on with
 * wrong memory. Like the dump guardian, it runs in its own session and
 * ignores SIGINT/SIGTERM/SIGHUP. If both the daemon and the watchdog are
 * killed at once, the tasks are left as the kernel leaves them (zeros):
 * that double failure is the limit (docs/incremental.md).
 */
import { childProcess } from '../builtins.js';
import { closeSync, writeSync } from 'node:fs';
import { pipe2, seqpacketPair, sendPacket, closeQuiet, O_CLOEXEC } from '../sys/index.js';
import { CriuTsError } from '../errors.js';
import { logger } from '../log.js';

const log = logger('lazy-pages');

const SCRIPT = `trap '' INT TERM HUP
s=$(cat)
case "$s" in done|*"
done") exit 0 ;; esac
all=""
walk() {
  for p in "$@"; do
    all="$all $p"
    for t in /proc/$p/task/*; do
      c=$(cat "$t/children" 2>/dev/null)
      [ -n "$c" ] && walk $c
    done
  done
}
walk $(printf '%s\\n' "$s" | sed -n 's/^P //p')
[ -z "$all" ] && exit 1
echo "criu-ts lazy-pages: the daemon is gone before every page was in place: lazily restored task(s)$all killed (SIGBUS)" >&2
kill -BUS $all 2>/dev/null
sleep 1
kill -KILL $all 2>/dev/null
exit 1`;

export class LazyWatchdog {
  private pipe: number;
  private sock: number;

  constructor() {
    const [r, w] = pipe2(O_CLOEXEC);
    const [a, b] = seqpacketPair();
    try {
      const child = childProcess().spawn('/bin/sh', ['-c', SCRIPT], { stdio: [r, 'ignore', 'inherit', b], detached: true });
      child.on('error', () => undefined);
      child.unref();
    } catch (e) {
      closeSync(w);
      closeQuiet(a);
      throw new CriuTsError('EINTERNAL', `cannot start the lazy-pages watchdog: ${(e as Error).message}`, {}, e);
    } finally {
      closeSync(r);
      closeQuiet(b);
    }
    this.pipe = w;
    this.sock = a;
  }

  /** A uffd the daemon serves (a copy stays queued for the watchdog), of task `pid` (0: a fork's child, found as a descendant). */
  hold(uffd: number, pid: number): void {
    if (this.sock < 0) return;
    try {
      sendPacket(this.sock, Buffer.from('u'), [uffd]);
      if (pid > 0) writeSync(this.pipe, `P ${pid}\n`);
    } catch (e) {
      log.warn(`watchdog gone: ${(e as Error).message}`);
    }
  }

  /** Every page is in place: the watchdog exits and drops its copies. */
  done(): void {
    if (this.pipe < 0) return;
    try {
      writeSync(this.pipe, 'done\n');
    } catch {
      // gone already
    }
    this.close();
  }

  /** The daemon fails: the watchdog kills the tasks it was told of. */
  fail(): void {
    this.close();
  }

  private close(): void {
    if (this.pipe >= 0) closeSync(this.pipe);
    closeQuiet(this.sock);
    this.pipe = -1;
    this.sock = -1;
  }
}
