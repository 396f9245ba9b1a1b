/*
 * The init of a pid namespace: started as a plain process, the subject
 * unshares CLONE_NEWPID and forks (like `unshare --pid --fork`, without
 * its messages in our log), and the child, pid 1 inside, is the subject;
 * the launcher waits for it quietly (the harness reads the subject's pid
 * from OUTFILE.ready). Its tree:
 *   - init: its own session (setsid, as a container's init does), a thread;
 *   - child A in a process group of its own, with a thread and a child G in A's group;
 *   - child S, a session leader that forked S2 and exited (init reaped it):
 *     S2, re-parented to init, stays in a session whose leader is gone;
 *   - child Z, a zombie (exit 7) init has not reaped.
 * Every task records the ids it sees (getpid, getppid, getpgrp, getsid,
 * gettid) and checks them after the restore; init also checks its view of
 * the others (getpgid, getsid, the zombie's status). --threads 0 leaves the
 * threads out. For the refusal: --unshared 1 has init unshare
 * CLONE_NEWPID (its next children would be born in another one). Pid
 * namespaces nested in the tree's: pid-ns-nested.c.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct ids { pid_t pid, ppid, pgrp, sid; };

static struct ids mine;
static int with_threads = 1;
static struct { pid_t a, g, s2; } *shared;

/* A thread that records its tid and, once asked, whether it still has it. */
static volatile pid_t thread_tid;
static volatile int thread_check, thread_ok = -1;

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = gettid_();
	while (!thread_check)
		usleep(1000);
	thread_ok = gettid_() == thread_tid;
	return NULL;
}

static void start_thread(void)
{
	if (!with_threads)
		return;
	pthread_detach(subject_thread(thread_main, NULL));
	while (thread_tid == 0)
		usleep(1000);
}

static void record(void)
{
	mine = (struct ids){ getpid(), getppid(), getpgrp(), getsid(0) };
}

/* NULL when this task still has the ids it recorded (and its thread its tid). */
static const char *verify_self(void)
{
	static char why[256];
	struct ids now = { getpid(), getppid(), getpgrp(), getsid(0) };
	if (memcmp(&now, &mine, sizeof(now)) != 0) {
		snprintf(why, sizeof(why), "pid/ppid/pgrp/sid %d/%d/%d/%d, was %d/%d/%d/%d", now.pid, now.ppid, now.pgrp,
			 now.sid, mine.pid, mine.ppid, mine.pgrp, mine.sid);
		return why;
	}
	if (with_threads && thread_tid != 0) {
		thread_check = 1;
		for (int i = 0; i < 5000 && thread_ok < 0; i++)
			usleep(1000);
		if (thread_ok != 1) {
			snprintf(why, sizeof(why), "task %d: its thread (tid %d) %s", now.pid, thread_tid,
				 thread_ok < 0 ? "does not answer" : "has another tid");
			return why;
		}
	}
	return NULL;
}

/* What a child of the tree does before the checkpoint and checks after it, beside its own ids. */
struct role {
	void (*setup)(void);
	const char *(*check)(void);
};

static const char *role_setup(void *arg)
{
	const struct role *r = arg;
	thread_tid = 0; /* its parent's thread is not its own */
	if (r->setup)
		r->setup();
	record();
	return NULL;
}

static const char *role_check(void *arg)
{
	const struct role *r = arg;
	const char *why = verify_self();
	return why == NULL && r->check ? r->check() : why;
}

/* A child that runs its role's setup, records its ids, waits for SIGTERM and reports through a pipe. */
static struct subject_child spawn(const struct role *r, const char *what)
{
	return subject_fork_prepared(what, role_setup, role_check, (void *)r);
}

static struct subject_child kid_g;

static const struct role role_g = { NULL, NULL };

static void setup_a(void)
{
	if (setpgid(0, 0) != 0)
		_exit(3);
	start_thread();
	kid_g = spawn(&role_g, "G");
	shared->g = kid_g.pid;
}

static const char *check_a(void)
{
	if (getpgid(kid_g.pid) != getpid())
		return "A: its child G left A's process group";
	subject_child_verdict(kid_g, "G");
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	with_threads = (int)subject_opt_long("threads", 1);
	subject_become_pidns_init();
	shared = subject_shared_anon(sizeof(*shared));
	start_thread();
	record();

	static const struct role role_a = { setup_a, check_a };
	struct subject_child a = spawn(&role_a, "A");
	shared->a = a.pid;

	/* S: a session leader that forks S2 and exits; S2's verdict pipe comes to init. */
	int sp[2];
	if (pipe(sp) != 0)
		subject_fail("pipe: %s", strerror(errno));
	pid_t s = fork();
	if (s == 0) {
		close(sp[0]);
		thread_tid = 0; /* init's thread is not ours */
		setsid();
		pid_t s2 = fork();
		if (s2 == 0) {
			/* Recorded once S is gone and init is its parent. */
			while (getppid() != 1)
				usleep(1000);
			record();
			subject_term = 0;
			subject_wait_term();
			const char *why = verify_self();
			if (why == NULL && getppid() != 1)
				why = "S2: not a child of init";
			if (why != NULL && write(sp[1], why, strlen(why)) < 0)
				_exit(2);
			_exit(why == NULL ? 0 : 1);
		}
		shared->s2 = s2;
		_exit(0);
	}
	close(sp[1]);
	int st;
	if (waitpid(s, &st, 0) != s)
		subject_fail("waitpid S: %s", strerror(errno));
	struct subject_child s2 = { .pid = shared->s2, .fd = sp[0] };

	pid_t z = fork();
	if (z == 0)
		_exit(7);
	siginfo_t si;
	if (waitid(P_PID, z, &si, WEXITED | WNOWAIT) != 0)
		subject_fail("waitid Z: %s", strerror(errno));
	/* G exists, and every task has recorded its ids (a short grace). */
	while (shared->g == 0)
		usleep(1000);
	usleep(50000);

	if (subject_opt_long("unshared", 0) && unshare(CLONE_NEWPID) != 0)
		subject_fail("unshare(CLONE_NEWPID) in init: %s", strerror(errno));

	subject_ready();
	subject_wait_term();

	if (getpid() != 1 || getppid() != 0)
		subject_fail("init: pid %d ppid %d, wanted 1 and 0", getpid(), getppid());
	const char *why = verify_self();
	if (why)
		subject_fail("init: %s", why);
	if (getpgid(a.pid) != a.pid || getpgid(shared->g) != a.pid)
		subject_fail("groups: A %d in %d, G %d in %d", a.pid, getpgid(a.pid), shared->g, getpgid(shared->g));
	if (getsid(s2.pid) != s)
		subject_fail("S2 %d: session %d, wanted %d (its leader gone)", s2.pid, getsid(s2.pid), s);
	if (waitpid(z, &st, WNOHANG) != z || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		subject_fail("zombie %d: not there with exit 7", z);
	subject_child_verdict(a, "A");
	subject_child_verdict(s2, "S2");
	subject_pass();
}
