/*
 * Tiny shared library for criu-ts test subjects.
 *
 * Protocol (test/lib/subjects.ts relies on it):
 *   SUBJECT --out OUTFILE [feature args], cwd = a fresh work dir, own session.
 *   subject_init()        parse --out, install the SIGTERM handler (no SA_RESTART)
 *   ... set up state ...
 *   subject_ready()       OUTFILE.ready <- pid (temp + rename)
 *   subject_wait_term()   or a feature loop that checks subject_term
 *   ... verify ...
 *   subject_pass() / subject_fail(fmt, ...)   OUTFILE <- "PASS\n" / "FAIL: ...\n", exit 0 / 1
 * A checkpoint/restore may happen between ready and SIGTERM; afterwards the
 * process keeps its pid but is no longer the harness' child.
 * Multi-threaded subjects create their other threads with SIGTERM blocked,
 * or a thread that is not waiting may take the signal and the wait hangs.
 */
#ifndef CRIU_TS_SUBJECT_H
#define CRIU_TS_SUBJECT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

extern volatile sig_atomic_t subject_term;

/* Parses --out; with --netns 1, unshares a net namespace of its own (lo up). */
void subject_init(int argc, char **argv);
/* Value of "--name VALUE" among the feature args, or dflt. */
const char *subject_opt(const char *name, const char *dflt);
long subject_opt_long(const char *name, long dflt);

void subject_ready(void);
/* path <- text through a temp file + rename, so a reader polling path never sees half of it; on failure, a log line and _exit(2). */
void subject_write_atomic(const char *path, const char *text);
void subject_wait_term(void);
void subject_pass(void) __attribute__((noreturn));
void subject_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* A line on stderr (the log file), flushed, prefixed with the pid. */
void subject_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 64-bit word hash over len bytes (len need not be a multiple of 8). */
uint64_t subject_hash(const void *p, size_t len);
/* Deterministic fill from seed; the same seed gives the same bytes. */
void subject_fill(void *p, size_t len, uint64_t seed);
uint64_t subject_rand(uint64_t *state);
/* A malloc'ed data area of len bytes filled from seed; *sum gets its hash (fails if malloc does). */
unsigned char *subject_data(size_t len, uint64_t seed, uint64_t *sum);
/*
 * xmm0-15 (16 bytes each) then st0 as a double, loaded from want (264
 * bytes); stored into seen and compared every 5 ms until *stop is set (0)
 * or they differ (1): a dump or restore that loses a thread's FPU state.
 */
int subject_fpu_loop(const unsigned char *want, unsigned char *seen, volatile int *stop);
/*
 * The shared memory file `fd` (a memfd, a POSIX shm object) mapped
 * MAP_SHARED read-write, map_len bytes; its first `size` bytes filled from
 * seed through the mapping and *sum their hash; then fd moved to keep_at,
 * or closed when keep_at < 0. Fails, naming `what`, on any error.
 */
unsigned char *subject_map_filled(int fd, size_t size, size_t map_len, uint64_t seed, uint64_t *sum, int keep_at, const char *what);

/*
 * The loop of a busy subject: subject_ready(), then *counter climbs by one
 * per millisecond, each step checked to be +1, until SIGTERM; then `after`
 * more steps prove the loop still runs. Fails on a step that was not +1, a
 * counter that went backwards, or missing after-steps (a restore that loses
 * or replays memory). Returns the counts at ready and at SIGTERM.
 */
struct subject_counts {
	uint64_t at_ready;
	uint64_t at_term;
};
struct subject_counts subject_count_until_term(volatile uint64_t *counter, int after);

/* "rwxp"-style permissions of the VMA containing addr, from /proc/self/maps; 0 if found. */
int subject_vma_perms(const void *addr, char perms[5]);
/* Nanoseconds of CLOCK_MONOTONIC. */
int64_t subject_now_ns(void);
/* Sleep ms milliseconds, the whole time even when signals interrupt it. */
void subject_sleep_ms(long ms);
/* Put fd at number want (dup2, then close fd); fails naming `what` and want if fd < 0 or dup2 fails. */
void subject_at(int want, int fd, const char *what);

/* A unix socketpair of type at fds a and b (both above any fd the subject holds); fails if it cannot be made. */
void subject_pair_at(int type, int a, int b);
/* The port a socket is bound to (AF_INET or AF_INET6); fails if getsockname does. */
int subject_port_of(int fd);
/* An int socket option: set (fails naming `what`) and read (fails naming level, option and fd). */
void subject_setint(int fd, int level, int name, int v, const char *what);
int subject_getint(int fd, int level, int name);
/* An AF_INET or AF_INET6 address ip:port in *ss (zeroed first); returns its length. */
struct sockaddr_storage;
unsigned int subject_sockaddr(int family, const char *ip, int port, struct sockaddr_storage *ss);
/* Receive exactly n bytes from a socket, waiting up to 5 s for each part; fails naming `what`. */
void subject_readn(int fd, void *p, size_t n, const char *what);
/* One message from a socket within 5 s, and it must be the string `want`; fails naming `what`. */
void subject_expect_recv(int fd, const char *want, const char *what);

/*
 * A child that sleeps delay_ms, then writes the len bytes of buf into a
 * pipe and exits 0 (3 if the write fell short): the pipe's read end, the
 * child's pid in *child. For a subject blocked reading it across a dump.
 */
int subject_delayed_writer(long delay_ms, const void *buf, size_t len, pid_t *child);
/* A thread running fn(arg), born with SIGTERM blocked (the end signal is the main thread's); fails if it cannot be made. */
pthread_t subject_thread(void *(*fn)(void *), void *arg);
/* A child that does nothing until killed, born with SIGTERM blocked (the subject's SIGTERM is not its end); fails if fork does. */
pid_t subject_idle_child(void);
/* Wait for child (EINTR retried); fails naming `what` unless it exited with status 0. */
void subject_reap_ok(pid_t child, const char *what);

/* The state letter of task pid (/proc/PID/stat: R, S, T, Z...), its parent in *ppid (if not NULL); 0 if it cannot be read. */
int subject_proc_state(pid_t pid, pid_t *ppid);
/* A pty pair: the master (posix_openpt) at fd master_at, its slave opened with slave_flags at slave_at; the slave's path in name. */
void subject_openpty(int master_at, int slave_at, int slave_flags, char name[64]);

/* A new file at path (O_RDWR, made or truncated, with mode) holding the len bytes of data, its offset at the end: its fd; fails naming path. */
int subject_new_file(const char *path, mode_t mode, const void *data, size_t len);
/* Write string s to the file at path (a sysctl, say): 0, or -1 on any error. */
int subject_write_file(const char *path, const char *s);
/* The number the file at path starts with; -1 if it cannot be read. */
long subject_read_long(const char *path);

/*
 * A child that holds some state across the checkpoint. It waits for
 * SIGTERM, runs check(arg), and reports through a pipe: check returns NULL
 * when its state survived, else the reason. After its own wait the parent
 * calls subject_child_verdict, which ends the child and fails (naming
 * `what`) unless the child passed. The child must never call
 * subject_fail (OUTFILE is the parent's): it returns its reason, or _exits.
 */
struct subject_child {
	pid_t pid;
	int fd;
};
struct subject_child subject_fork_checker(const char *(*check)(void *arg), void *arg);
/*
 * The same with a set-up of the child's own: the child runs setup(arg)
 * first (NULL when done, else the reason), and the parent returns only
 * once it is done (failing, naming `what` and the reason, if it failed).
 * So the child's state is in place when the parent says it is ready, and
 * nothing of the child's runs after that until subject_child_verdict.
 */
struct subject_child subject_fork_prepared(const char *what, const char *(*setup)(void *arg), const char *(*check)(void *arg), void *arg);
/* The same, the child made by clone with `flags` (namespaces, e.g. CLONE_NEWPID; 0: fork). */
struct subject_child subject_clone_prepared(const char *what, unsigned long flags, const char *(*setup)(void *arg),
					    const char *(*check)(void *arg), void *arg);
void subject_child_verdict(struct subject_child c, const char *what);
/* A child's report: its pipe `fd` read to the end into buf (NUL-terminated, at most size - 1 bytes), fd closed; returns the length. */
size_t subject_read_report(int fd, char *buf, size_t size);
/* fork(), the child born with SIGTERM blocked (the end signal is the parent's); fails if fork does. */
pid_t subject_fork_quiet(void);
/*
 * A child's last words: wait, without a time limit and through any
 * interruption, for one message on socket `in`; if it is the string want,
 * send the string reply on socket `out` and _exit(0), else _exit(3)
 * (4: the reply could not be sent).
 */
void subject_answer_and_exit(int in, const char *want, int out, const char *reply) __attribute__((noreturn));

/*
 * Become the init of a pid namespace of its own (unshare + fork, unless
 * already pid 1): the caller waits for it and exits, unmoved by SIGTERM
 * (the restored init is not its child); only the init, pid 1, returns,
 * leading a session of its own (setsid) as a container's init does.
 */
void subject_become_pidns_init(void);

/* An SA_SIGINFO | SA_RESTART handler fn for sig, with mask_sig (0: none) blocked while it runs; fails if sigaction does. */
void subject_on_signal(int sig, void (*fn)(int, siginfo_t *, void *), int mask_sig);
/* A MAP_SHARED | MAP_ANONYMOUS read-write mapping of len bytes (one object parent and children share); fails if mmap does. */
void *subject_shared_anon(size_t len);
/* A seccomp filter (installed with `flags`) that fails syscall nr with errno err and allows the rest: 0, or -1 with errno. */
long subject_seccomp_deny(int nr, int err, unsigned int flags);

#endif
