/*
 * threads: --threads N (8) threads, each with its own state that a restore
 * must put back per thread, not per process:
 *   - tid (gettid) and name (pthread_setname_np "thr-I");
 *   - signal mask: SIGTERM, SIGUSR1, SIGUSR2 blocked in all, plus
 *     SIGRTMIN+2+b for every bit b set in I (distinct for I < 1024);
 *   - TLS: __thread id and a 1 KiB __thread buffer filled from I;
 *   - FPU: xmm0-15 and x87 st0 loaded with values from I and held live in
 *     registers by an asm loop that re-checks them between 5 ms sleeps
 *     (--fpu 0 makes threads wait on a futex instead);
 *   - a thread-private pending SIGUSR1 (pthread_sigqueue to thread 0, value
 *     0x7001) and a process-wide pending SIGUSR2 (sigqueue, value 0x7002).
 * At check time every thread verifies all of it; the private SIGUSR1 must be
 * pending in thread 0 only, SIGUSR2 in every thread, and each is consumed
 * with its value. Threads are created with SIGTERM blocked.
 * `--in-child 1`: all of it happens in a child process (threads in a task
 * that is not the root); the root waits for SIGTERM, passes it on and
 * exits with the child's status; the child writes the verdict.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TLS_BYTES 1024
#define NXMM 16

struct thr {
	pthread_t pt;
	int idx;
	pid_t tid;
	char msg[160]; /* empty when the thread's checks passed */
	volatile int done;
};

static struct thr *thr;
static long nthreads;
static int use_fpu;
static volatile int started, checked_pending, stop;
static __thread long tls_id = -1;
static __thread unsigned char tls_buf[TLS_BYTES];
static const struct timespec tick = { 0, 5000000 };

static void expected_mask(int idx, sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	for (int b = 0; b < 10; b++)
		if (idx & (1 << b))
			sigaddset(set, SIGRTMIN + 2 + b);
}

/* First signal whose membership differs, 0 when the sets are equal. */
static int mask_diff(const sigset_t *a, const sigset_t *b)
{
	for (int s = 1; s < 65; s++)
		if (sigismember(a, s) != sigismember(b, s))
			return s;
	return 0;
}


static void futex_wait_stop(void)
{
	while (!stop)
		syscall(SYS_futex, &stop, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static void *body(void *arg)
{
	struct thr *t = arg;
	char *m = t->msg;
	size_t ml = sizeof(t->msg);
	char name[16], want_name[16];
	sigset_t want, cur;

	t->tid = gettid();
	tls_id = t->idx;
	subject_fill(tls_buf, TLS_BYTES, 0x7150000u + (uint64_t)t->idx);
	uint64_t tls_hash = subject_hash(tls_buf, TLS_BYTES);
	snprintf(want_name, sizeof(want_name), "thr-%d", t->idx);
	pthread_setname_np(pthread_self(), want_name);
	expected_mask(t->idx, &want);
	pthread_sigmask(SIG_SETMASK, &want, NULL);

	unsigned char fwant[264] __attribute__((aligned(16))), fseen[264] __attribute__((aligned(16)));
	for (int i = 0; i < 256; i++)
		fwant[i] = (unsigned char)(i * 13 + t->idx * 31 + 1);
	double st0 = 1000.25 + t->idx;
	memcpy(fwant + 256, &st0, 8);

	__sync_fetch_and_add(&started, 1);
	int fpu_bad = use_fpu ? subject_fpu_loop(fwant, fseen, &stop) : (futex_wait_stop(), 0);

	if (fpu_bad) {
		int r;
		for (r = 0; r < NXMM && memcmp(fseen + r * 16, fwant + r * 16, 16) == 0; r++)
			;
		if (r < NXMM)
			snprintf(m, ml, "xmm%d changed", r);
		else
			snprintf(m, ml, "st0 changed");
	} else if (gettid() != t->tid) {
		snprintf(m, ml, "tid %d, was %d", gettid(), t->tid);
	} else if (tls_id != t->idx || subject_hash(tls_buf, TLS_BYTES) != tls_hash) {
		snprintf(m, ml, "TLS id %ld or buffer changed", tls_id);
	} else if (pthread_getname_np(pthread_self(), name, sizeof(name)) != 0 || strcmp(name, want_name) != 0) {
		snprintf(m, ml, "name '%s', want '%s'", name, want_name);
	} else if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0 || mask_diff(&cur, &want) != 0) {
		snprintf(m, ml, "signal mask differs at signal %d", mask_diff(&cur, &want));
	} else {
		sigset_t pend;
		sigpending(&pend);
		if (!sigismember(&pend, SIGUSR2))
			snprintf(m, ml, "process-wide SIGUSR2 not pending");
		else if (sigismember(&pend, SIGUSR1) != (t->idx == 0))
			snprintf(m, ml, "thread-private SIGUSR1 %s", t->idx == 0 ? "not pending" : "pending in the wrong thread");
	}
	__sync_fetch_and_add(&checked_pending, 1);
	if (t->idx == 0 && !m[0]) {
		/* Every thread has looked at its pending set: now take our private signal. */
		while (checked_pending < nthreads)
			nanosleep(&tick, NULL);
		sigset_t one;
		siginfo_t si;
		struct timespec zero = { 0, 0 };
		sigemptyset(&one);
		sigaddset(&one, SIGUSR1);
		if (sigtimedwait(&one, &si, &zero) != SIGUSR1)
			snprintf(m, ml, "sigtimedwait SIGUSR1: %s", strerror(errno));
		else if (si.si_value.sival_int != 0x7001 || si.si_code != SI_QUEUE)
			snprintf(m, ml, "SIGUSR1 value 0x%x code %d", si.si_value.sival_int, si.si_code);
	}
	__sync_synchronize();
	t->done = 1;
	return NULL;
}

/* Root of `--in-child 1`: ready once the child is, then forward SIGTERM and pass its status on. */
static void __attribute__((noreturn)) parent_of(pid_t child)
{
	for (int i = 0; access("child-ready", F_OK) != 0; i++) {
		int st;
		if (waitpid(child, &st, WNOHANG) == child)
			subject_fail("child %d ended before ready: status 0x%x", child, st);
		if (i > 20000)
			subject_fail("child %d not ready after 20 s", child);
		nanosleep(&tick, NULL);
	}
	subject_ready();
	subject_wait_term();
	kill(child, SIGTERM);
	int st = 0;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			subject_fail("waitpid %d: %s", child, strerror(errno));
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 3);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int in_child = (int)subject_opt_long("in-child", 0);
	if (in_child) {
		unlink("child-ready");
		pid_t child = fork();
		if (child < 0)
			subject_fail("fork: %s", strerror(errno));
		if (child > 0)
			parent_of(child);
	}
	nthreads = subject_opt_long("threads", 8);
	use_fpu = (int)subject_opt_long("fpu", nthreads <= 64);
	long stack_kib = subject_opt_long("stack-kib", 0);
	if (nthreads < 1 || nthreads > 4000)
		subject_fail("--threads %ld out of range", nthreads);
	thr = calloc((size_t)nthreads, sizeof(*thr));
	if (thr == NULL)
		subject_fail("calloc");

	sigset_t all, old;
	expected_mask(0, &all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (stack_kib > 0 && pthread_attr_setstacksize(&attr, (size_t)stack_kib * 1024) != 0)
		subject_fail("stack size %ld KiB refused", stack_kib);
	for (long i = 0; i < nthreads; i++) {
		thr[i].idx = (int)i;
		int e = pthread_create(&thr[i].pt, &attr, body, &thr[i]);
		if (e != 0)
			subject_fail("pthread_create %ld: %s", i, strerror(e));
	}
	/* The main thread keeps SIGUSR1/2 blocked (the pending ones must stay pending) but takes SIGTERM. */
	sigset_t main_mask = all;
	sigdelset(&main_mask, SIGTERM);
	pthread_sigmask(SIG_SETMASK, &main_mask, NULL);
	(void)old;
	while (started < nthreads)
		nanosleep(&tick, NULL);

	union sigval v1 = { .sival_int = 0x7001 }, v2 = { .sival_int = 0x7002 };
	if (pthread_sigqueue(thr[0].pt, SIGUSR1, v1) != 0)
		subject_fail("pthread_sigqueue failed");
	if (sigqueue(getpid(), SIGUSR2, v2) != 0)
		subject_fail("sigqueue: %s", strerror(errno));
	subject_log("%ld threads, fpu %d", nthreads, use_fpu);

	if (in_child) {
		FILE *f = fopen("child-ready", "we");
		if (f == NULL || fclose(f) != 0)
			subject_fail("create child-ready: %s", strerror(errno));
	} else {
		subject_ready();
	}
	subject_wait_term();

	stop = 1;
	if (!use_fpu)
		syscall(SYS_futex, &stop, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
	for (long i = 0; i < nthreads; i++) {
		int e = pthread_join(thr[i].pt, NULL);
		if (e != 0)
			subject_fail("pthread_join %ld: %s", i, strerror(e));
		if (thr[i].msg[0])
			subject_fail("thread %ld (tid %d): %s", i, thr[i].tid, thr[i].msg);
	}
	sigset_t two;
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	sigemptyset(&two);
	sigaddset(&two, SIGUSR2);
	if (sigtimedwait(&two, &si, &zero) != SIGUSR2)
		subject_fail("process-wide SIGUSR2 gone: %s", strerror(errno));
	if (si.si_value.sival_int != 0x7002 || si.si_code != SI_QUEUE)
		subject_fail("SIGUSR2 value 0x%x code %d", si.si_value.sival_int, si.si_code);
	subject_pass();
}
