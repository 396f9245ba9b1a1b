/**
 * Every C subject with the arguments it is tested with: one table for the
 * subjects' self-test and for dump/restore runners that go through them all.
 */
import { readFileSync } from 'node:fs';
import { probePagemapScanGuard } from '../../src/sys/probe.js';

export interface SubjectCase {
  name: string;
  args: string[];
  /** Build with -pthread. */
  pthread: boolean;
  /** Let it run this long after ready before anything else (it does work only while running). */
  runMs: number;
  /** What a restore of it exercises, for test names and reports. */
  feature: string;
  /** Why this machine cannot run it (the test is skipped with this reason), or undefined. */
  skip?: string | undefined;
}

/** The CPU flags the kernel reports (first cpu in /proc/cpuinfo). */
function cpuFlags(): Set<string> {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}
const FLAGS = cpuFlags();

/** Guard regions need MADV_GUARD_INSTALL and PAGEMAP_SCAN reporting them (Linux 6.14+). */
function needGuardRegions(): string | undefined {
  const r = probePagemapScanGuard();
  return r.ok ? undefined : `this kernel's PAGEMAP_SCAN does not report guard regions (${r.reason ?? 'unknown'})`;
}

/** Skip reason unless this many 2 MiB huge pages are free (the pool is a machine setting: never changed here). */
function needHugePages(n: number): string | undefined {
  try {
    const free = Number(/HugePages_Free:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
    const size = /Hugepagesize:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
    if (size !== '2048') return 'the default huge page size is not 2 MiB';
    return free >= n ? undefined : `needs ${n} free 2 MiB huge pages (vm.nr_hugepages), ${free} free`;
  } catch {
    return 'no /proc/meminfo';
  }
}
const needCpu = (...flags: string[]): string | undefined => {
  const missing = flags.filter((f) => !FLAGS.has(f));
  return missing.length === 0 ? undefined : `this CPU lacks ${missing.join(', ')}`;
};

/** Why the cgroup subject cannot run here: it needs a cgroup2 mount (of the whole hierarchy). */
function noCgroup2(): string | undefined {
  try {
    const found = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => / - cgroup2 /.test(l) && l.split(' ')[3] === '/');
    return found ? undefined : 'no cgroup2 mount on this machine';
  } catch {
    return 'no /proc/self/mountinfo';
  }
}

const c = (name: string, feature: string, more: Partial<SubjectCase> = {}): SubjectCase => ({
  name, feature, args: [], pthread: false, runMs: 0, ...more,
});

export const SUBJECTS: readonly SubjectCase[] = [
  c('counter-loop', 'registers and memory of a running loop', { runMs: 100 }),
  c('mappings', 'every VMA kind: anon, shared anon, file private/shared, heap, stack, PROT_NONE, guards, growsdown'),
  c('map-flags', 'MAP_LOCKED and mlock()ed memory, MAP_DROPPABLE, a private /dev/zero mapping'),
  c('no-vdso', 'a task that unmapped its vDSO and vvar stays without them'),
  c('big-memory', 'many pages of distinct content', { args: ['--mib', '64'] }),
  c('sparse-memory', 'written stretches of a big mapping, the holes between them left unallocated, a written read-only region'),
  c('many-vmas', '3000 anonymous mappings with holes between, every page read again and again from ready on'),
  c('mem-dirty', 'memory model checked page by page (driven through pre-dumps by test/e2e/pre-dump.test.ts)'),
  c('signals', 'sigactions, blocked mask, pending signals with siginfo, sigaltstack'),
  c('sigtrap', 'a SIGTRAP handler (ptrace single-steps must not reset it)'),
  c('itimer', 'ITIMER_REAL interval and value', { runMs: 120 }),
  c('itimer-fast', 'ITIMER_REAL every 1 ms: SIGALRMs taken by the dump\'s own stops come back as one pending signal', { runMs: 120 }),
  c('itimer-expired', 'ITIMER_REAL expired at the dump, its SIGALRM pending: interval kept, re-armed when the signal is taken', { runMs: 120 }),
  c('file-offsets', 'regular/dir/device fds: numbers, offsets, flags, FD_CLOEXEC'),
  c('utf8-paths', 'cwd, an fd, a shared mapping and an unlinked file whose names are not ASCII (UTF-8)'),
  c('fpu', 'x87, SSE and AVX register state', { runMs: 100 }),
  c('seccomp-tsync', 'a root filter without no_new_privs shared by two threads: a TSYNC filter added after restore reaches both', { pthread: true }),
  c('amx-perm', 'permission for AMX tile data (ARCH_REQ_XCOMP_PERM) kept: a tile instruction still runs', { skip: needCpu('amx_tile') }),
  c('creds-caps', 'five capability sets per thread (bounding trimmed, ambient raised), securebits, no_new_privs', { pthread: true }),
  c('task-attrs', 'personality, loginuid, membarrier, dumpable, subreaper, THP; per thread: policy, priority, nice, pdeathsig, timer slack', { pthread: true }),
  c('avx512', 'AVX-512 state at CPUID offsets: zmm0-31 and k1-k7, live while spinning in user space', { runMs: 100, skip: needCpu('avx512f', 'avx512bw') }),
  c('sleep-nanosleep', 'restart of an interrupted nanosleep', { runMs: 50 }),
  c('poll-restart', 'a poll restarted by the kernel (restart_syscall) when dumped', { runMs: 50 }),
  c('read-pipe', 'restart of a read() blocked on a pipe', { args: ['--delay-ms', '300'] }),
  c('wait-child', 'restart of waitpid() on a live child', { args: ['--delay-ms', '300'] }),
  c('poll', 'restart of poll() with its remaining timeout', { args: ['--delay-ms', '300'] }),
  c('fd-kinds', 'eventfd, epoll, timerfd, signalfd, inotify, fanotify, flock, POSIX lock, pidfd, ptmx', { args: ['--fanotify', '1', '--tty', '1'] }),
  c('proc-target', 'threads, children, POSIX timer, rlimit, umask, deleted mapping', { pthread: true }),
  c('ghost-files', 'unlinked open file (contents, offset), mapping of an unlinked file, removed cwd, file renamed while open'),
  c('ghost-shared', 'unlinked inodes as one inode each (two names, fd + mapping, parent + child, O_TMPFILE, removed dirs and cwd), sparse with suid/sgid, owner, mtime'),
  c('link-remap', 'a file unlinked but linked elsewhere, dumped with --link-remap: same inode, temporary name removed'),
  c('seccomp-filter', 'two stacked seccomp filters under no_new_privs, still applied after restore'),
  c('orphan-session', 'a session whose leader exited (daemon double fork) under a subreaper root'),
  c('fork-churn', 'forks and reaps children all the time, also while the dump runs', { runMs: 300 }),
  c('epoll-fork', 'one epoll (watching an eventfd) shared by a parent and its child'),
  c('shmem-child-writes', 'shared anonymous pages written only by a child, still shared after restore'),
  c('eventfd', 'eventfd counters: EFD_SEMAPHORE, O_NONBLOCK, a count above 32 bits'),
  c('epoll', 'epoll targets with events and data, EPOLLET, an epoll watching an epoll, a target whose fd was closed and reused (another fd keeps the file)'),
  c('timerfd', 'timerfds: remaining time, interval, pending ticks, absolute REALTIME, expired periodic'),
  c('signalfd', 'signalfd mask and flags, a signal pending at dump read after restore'),
  c('inotify', 'inotify watches by path with their wd numbers (with a gap), no stray events'),
  c('fanotify', 'fanotify mount and inode marks'),
  c('fown', 'file owners: F_SETOWN_EX (process, thread) with the owner\'s uids, F_SETSIG, O_ASYNC signals still sent'),
  c('pipe-data', 'pipes: queued bytes, lone ends, 64 KiB/1 MiB buffers, dup and reopened ends'),
  c('tree', 'a 3-level tree: three sessions (one left behind by its parent), a process group whose leader is gone, ids and memory of every task'),
  c('zombie', 'unreaped children (exit 7, killed by SIGUSR2) stay zombies of their parent'),
  c('zombie-killed', 'zombies killed by SIGKILL and by a SIGSEGV fault'),
  c('zombie-sigchld', 'a zombie\'s SIGCHLD still pending in its parent (blocked), with its siginfo'),
  c('chroot', 'a task chrooted into a directory, its cwd in a subdirectory of the new root'),
  c('unhashed-proc', 'cwd and an fd in /proc/PID of a child that exited and was reaped (an unhashed /proc entry)'),
  c('epoll-in-flight', 'an epoll that exists only in a socket queue (SCM_RIGHTS), watching a socket and a pipe with their event data'),
  c('stopped', 'children stopped by themselves and by their parent stay stopped, then continue'),
  c('stopped-tstp', 'a child stopped by SIGTSTP is stopped by SIGTSTP again (waitid reports the signal)'),
  c('threads', '8 threads: tid, name, signal mask, TLS, FPU registers, private and shared pending signals', { pthread: true, runMs: 50 }),
  c('dump-victim', '4 threads (FPU and general registers live, one in read()), a SIGUSR1 handler, a 64 MiB heap, per-thread masks', { pthread: true, runMs: 50 }),
  c('threads', '8 threads in a child process (the root forwards SIGTERM)', { pthread: true, runMs: 50, args: ['--in-child', '1'] }),
  c('threads', '1000 threads with 64 KiB stacks waiting on a futex: tid, TLS, name, mask', { pthread: true, args: ['--threads', '1000', '--fpu', '0', '--stack-kib', '64'] }),
  c('rseq-cs', 'two threads stopped inside an rseq critical section go to its abort handler, never on with rseq_cs cleared', { pthread: true, runMs: 50 }),
  c('posix-timers', 'POSIX timers: ids with a gap, clocks, SIGEV_SIGNAL/NONE/THREAD_ID, still firing', { pthread: true, runMs: 100 }),
  c('pid-ns-nested', 'pid namespaces nested in the tree (two levels): pids at every level, a thread, a group, a session helper, a zombie, an orphan the nested init reaps', { pthread: true, args: ['--deeper', '1'] }),
  c('cow-fork', 'copy-on-write: pages parent and child share since fork are one physical page again (anon, private file, read-only)'),
  c('hugetlb', 'MAP_HUGETLB memory, private and shared across fork (a huge page only the child wrote), a hugetlb memfd: contents and page size', { skip: needHugePages(12) }),
  c('aio-ring', 'AIO contexts: ring address, size, head and tail (one ring gone around), unreaped events, new requests after'),
  c('aio-ring', 'the same but the kernel\'s numbers of the rings (what CRIU 4.2 restores too: test/e2e/criu-restores-ours)', { args: ['--criu-shape', '1'] }),
  c('shmem-windows', 'one shared anonymous object through windows: pages only the child still maps saved with the parent, a second window via map_files'),
  c('shmem-private-map', 'a shared anonymous object mapped privately through map_files (copy-on-write over it) and shared through a second window'),
  c('shmem-fd', 'fds opened on shared anonymous mappings through map_files: still the mapping\'s object (writes cross both ways), its size, an fd with no mapping left, an fd shared with a child that maps it'),
  c('guard-regions', 'MADV_GUARD_INSTALL guard regions in anonymous and private file mappings: still faulting, data around them, no extra VMA', { skip: needGuardRegions() }),
  c('shared-anon-fork', 'MAP_SHARED anonymous memory stays one object for parent and child'),
  c('thp-fork', 'the THP-disabled flag fork copies: a child that kept its restored parent\'s, a child that changed it'),
  c('fifo', 'FIFOs in every open mode with queued bytes and buffer size, an unlinked FIFO open twice'),
  c('memfd', 'memfds: contents with holes, size, seals, mode, offsets, two descriptions of one inode, a dup'),
  c('posix-shm', 'POSIX shm objects as glibc opens them (O_NOFOLLOW kept in the flags): one linked, one unlinked at once, each open and mapped, one object again; a named semaphore unlinked after sem_open (Python multiprocessing\'s locks)'),
  c('unix-pair', 'unix socketpairs of each type: queued messages both ways, shutdown, options'),
  c('pty', 'a pty pair: controlling terminal, termios, window size, packet mode, /dev/tty'),
  c('unix-bound', 'unix sockets bound by path/relative/abstract name, listeners with pending connections'),
  c('unix-fork', 'unix socketpairs split over and shared through a fork, bytes queued by the child'),
  c('unix-scm', 'files in flight (SCM_RIGHTS): a pipe whose both ends are in flight, one file sent twice, an eventfd from a closed peer, a socket in flight carrying a file'),
  c('unix-scm', 'unix sockets in flight inside their own queues, held by the task too (a stream socket carrying itself, zdtm scm06\'s datagram pair each carrying both): the very sockets come back', { args: ['--loop', '1'] }),
  c('proc-files', '/proc/self files and directory held open: reopened by path, offsets kept'),
  c('unix-dgram-fork', 'datagram sockets bound and connected by name across a fork, a datagram queued, a server whose name was unlinked and taken by a FIFO, a socket connected to itself'),
  c('tcp-listen', 'TCP listeners on 127.0.0.1, [::1] and dual-stack [::], bound-only and unbound sockets: ports, options, accept after restore'),
  c('tcp-conn', 'established TCP connections on loopback (dumped with --tcp-established)'),
  c('tcp-echo', 'a TCP echo server on loopback (its clients, outside the dump, in test/kinds/files/inet-echo-server.test.ts)'),
  c('tcp-states', 'TCP connections in FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING and reset, both ends in the tree, IPv4/IPv6/v4-mapped'),
  c('tcp-close', 'a listener with a connection not accepted yet (--skip-in-flight)', { args: ['--mode', 'in-flight'] }),
  c('tcp-states', 'half-closed TCP connections whose two ends are in a parent and its child', { args: ['--split', '1'] }),
  c('inet-raw', 'raw IPv4/IPv6 sockets (ICMP, UDP, IPPROTO_RAW): addresses, ICMP filters, IP/IPv6 options, connected; ping sockets in test/kinds/files/inet-raw.test.ts'),
  c('tcp-states', 'half-closed TCP connections in a net namespace of the tree\'s own (restored into a new one): the peer\'s FINs are replayed there', { args: ['--netns', '1'] }),
  c('packet-sock', 'packet sockets: raw, datagram and SOCK_PACKET, bound or not, TPACKET version, auxdata/origdev/reserve, RX and TX rings (one mapped into memory), memberships, a fanout group'),
  c('packet-sock', 'packet sockets in a net namespace of the tree\'s own (sock_diag asked there; devices named there)', { args: ['--netns', '1'] }),
  c('netlink-sock', 'netlink sockets: route with a kernel-picked port id and groups past 32, generic and user sockets bound to port ids, one connected, one never bound'),
  c('sock-opts', 'socket filters (UDP with a datagram queued before its filter, a unix pair), SO_LINGER, SO_BINDTODEVICE, a SO_REUSEPORT group of listeners one of which left it'),
  c('udp', 'UDP sockets v4/v6 bound, connected, unbound, shut down: queued datagrams, peers, options'),
  c('pidfd', 'pidfds of the task and of its child: same pids, flags, signal and exit through them; pidfds of reaped children (one inode per dead process)'),
  c('pty-fork', 'pty master in the parent, slave the controlling terminal of a child in its own session'),
  c('net-ns', 'a net namespace of its own set up with ip (lo up, v4/v6 addresses, a route, sysctls) holding a TCP listener and a UDP socket on its addresses'),
  c('net-veth', 'a net namespace of its own with a veth pair (both ends inside, ifindexes, addresses, mtu, promisc) and a bridge holding one end, addresses on them, a TCP listener; TCP and UDP sockets bound to a link-local IPv6 address of the veth'),
  c('net-nested', 'a net namespace of its own and a child in one nested in it, a veth between the two (addresses, mtu), a listener in the child reached over the veth, the same abstract unix name bound in both, a grandchild back in the root\'s namespace'),
  c('net-tun', 'tun files in a net namespace of its own: one never attached, one holding a non-persistent tun, two queues of a multi-queue tun (one detached), one holding a tap with its address'),
  c('mqueue', 'POSIX message queues: a named one open twice (read-write, write-only non-blocking) with messages of three priorities and an empty one, an unlinked one with a binary message, left in criu-ts\'s ipc namespace'),
  c('mqueue', 'the same in an ipc namespace of its own, with a named queue no fd holds', { args: ['--ipc-ns', '1'] }),
  c('ipc-ns', 'uts+ipc namespaces of its own (names, a sysctl) with SysV shm (contents, attachments, a removed segment), semaphores and messages, shared with a child'),
  c('ipc-ns', 'the same without a removed segment nor a queue byte limit (what CRIU 4.2 restores too: test/e2e/criu-restores-ours)', { args: ['--criu-shape', '1'] }),
  c('cgroup', 'a process in a cgroup v2 directory of its own and its child in one below (both made by it), an empty one with its mode, cgroup.max.descendants', { skip: noCgroup2() }),
  c('pty-queued', 'bytes queued in a pty pair both ways: complete lines, lines ended by EOF, a quoted ^D, a partial line'),
  c('pty-ctty', 'controlling terminals held by no fd (the leader\'s own, a member\'s /dev/tty, a child session\'s with SIGHUP on hangup), slave owner'),
  c('opath-symlink', 'O_PATH fds: a symlink itself, an unlinked symlink (ghost with its target and owner), a file, a directory'),
  c('fdt-shared', 'two processes sharing one fd table (CLONE_FILES without CLONE_VM): still one table after restore'),
  c('file-lease', 'leases (--file-locks): read and write leases, a read lease being broken by a child\'s open'),
  c('inotify-unlinked', 'an inotify watch on a file unlinked while an fd keeps it: the watch is on the restored ghost'),
  c('ns-fd', 'namespace files held open: the task\'s own net and uts namespaces'),
  c('pty-hangup', 'pty slaves whose master was closed: still hung up, node deleted, no controlling terminal'),
  c('thread-churn', 'threads created and exiting all the time, also while the dump runs', { pthread: true, runMs: 50 }),
];
