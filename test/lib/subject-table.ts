/**
 * Every C subject with the arguments it is tested with: one table for the
 * subjects' self-test and for dump/restore runners that go through them all.
 */
export interface SubjectCase {
  name: string;
  args: string[];
  /** Build with -pthread. */
  pthread: boolean;
  /** Let it run this long after ready before anything else (it does work only while running). */
  runMs: number;
  /** What a restore of it exercises, for test names and reports. */
  feature: string;
}

const c = (name: string, feature: string, more: Partial<SubjectCase> = {}): SubjectCase => ({
  name, feature, args: [], pthread: false, runMs: 0, ...more,
});

export const SUBJECTS: readonly SubjectCase[] = [
  c('counter-loop', 'registers and memory of a running loop', { runMs: 100 }),
  c('mappings', 'every VMA kind: anon, shared anon, file private/shared, heap, stack, PROT_NONE, guards, growsdown'),
  c('big-memory', 'many pages of distinct content', { args: ['--mib', '64'] }),
  c('signals', 'sigactions, blocked mask, pending signals with siginfo, sigaltstack'),
  c('itimer', 'ITIMER_REAL interval and value', { runMs: 120 }),
  c('file-offsets', 'regular/dir/device fds: numbers, offsets, flags, FD_CLOEXEC'),
  c('fpu', 'x87, SSE and AVX register state', { runMs: 100 }),
  c('sleep-nanosleep', 'restart of an interrupted nanosleep', { runMs: 50 }),
  c('read-pipe', 'restart of a read() blocked on a pipe', { args: ['--delay-ms', '300'] }),
  c('wait-child', 'restart of waitpid() on a live child', { args: ['--delay-ms', '300'] }),
  c('poll', 'restart of poll() with its remaining timeout', { args: ['--delay-ms', '300'] }),
  c('fd-kinds', 'eventfd, epoll, timerfd, signalfd, inotify, fanotify, flock, POSIX lock, pidfd, ptmx', { args: ['--fanotify', '1', '--tty', '1'] }),
  c('proc-target', 'threads, children, POSIX timer, rlimit, umask, deleted mapping', { pthread: true }),
  c('eventfd', 'eventfd counters: EFD_SEMAPHORE, O_NONBLOCK, a count above 32 bits'),
  c('epoll', 'epoll targets with events and data, EPOLLET, an epoll watching an epoll'),
  c('timerfd', 'timerfds: remaining time, interval, pending ticks, absolute REALTIME, expired periodic'),
  c('signalfd', 'signalfd mask and flags, a signal pending at dump read after restore'),
  c('inotify', 'inotify watches by path with their wd numbers (with a gap), no stray events'),
  c('fanotify', 'fanotify mount and inode marks'),
  c('pipe-data', 'pipes: queued bytes, lone ends, 64 KiB/1 MiB buffers, dup and reopened ends'),
];
