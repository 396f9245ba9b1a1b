/*
 * A pid namespace nested in the dumped tree's. The subject R (in our pid
 * namespace, or with --own-ns 1 the init of one of its own, as pid-ns.c)
 * clones N with CLONE_NEWPID: pid 1 of a namespace below R's. N, in R's
 * process group and session (which it sees as 0: their leader is outside),
 * has a thread, and forks:
 *   - C1, in a group of its own, which after the restore waits for a
 *     SIGUSR1 that N sends by C1's pid inside (si_pid 1, its parent);
 *   - S, which makes its own session, forks S2 and exits: N reaps S, and
 *     S2, an orphan, becomes N's child in a session whose leader is gone;
 *   - Z, a zombie (exit 7) N has not reaped.
 * With --deeper 1, N also clones D with CLONE_NEWPID (pid 1 two levels
 * below R's), which forks D1. With --unshare 1, R makes N as `unshare -fp`
 * does: unshare(CLONE_NEWPID), then fork; R's next children still go to
 * N's namespace after the restore (a child it forks sees no parent).
 * Each task records getpid, getppid, getpgrp, getsid (and N its thread's
 * tid) and checks them after the restore; N checks its view of the others
 * (getpgid, getsid, the zombie's status) and reaps the orphan S2; R checks
 * that N still has its pid as R sees it.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct ids { pid_t pid, ppid, pgrp, sid; };

static struct ids mine;
static char why_buf[512];

static void record(void)
{
	mine = (struct ids){ getpid(), getppid(), getpgrp(), getsid(0) };
}

/* NULL when this task still has the ids it recorded. */
static const char *verify_self(const char *who)
{
	struct ids now = { getpid(), getppid(), getpgrp(), getsid(0) };
	if (memcmp(&now, &mine, sizeof(now)) == 0)
		return NULL;
	snprintf(why_buf, sizeof(why_buf), "%s: pid/ppid/pgrp/sid %d/%d/%d/%d, was %d/%d/%d/%d", who, now.pid, now.ppid,
		 now.pgrp, now.sid, mine.pid, mine.ppid, mine.pgrp, mine.sid);
	return why_buf;
}

/* A child's verdict without subject_fail (only R writes OUTFILE): NULL when it passed. */
static const char *verdict(struct subject_child c, const char *what)
{
	static char out[700];
	char why[512];
	if (kill(c.pid, SIGTERM) != 0) {
		snprintf(out, sizeof(out), "%s (%d): gone: %s", what, c.pid, strerror(errno));
		return out;
	}
	size_t got = subject_read_report(c.fd, why, sizeof(why));
	int st;
	while (waitpid(c.pid, &st, 0) < 0) {
		if (errno != EINTR) {
			snprintf(out, sizeof(out), "%s (%d): waitpid: %s", what, c.pid, strerror(errno));
			return out;
		}
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return NULL;
	snprintf(out, sizeof(out), "%s (%d): %s", what, c.pid, got ? why : "died without a verdict");
	return out;
}

/* --- C1: its own group; after the restore, a SIGUSR1 from its parent N, sent by C1's inner pid. */
static volatile pid_t usr1_from;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	usr1_from = si->si_pid;
}

static const char *setup_c1(void *arg)
{
	(void)arg;
	if (setpgid(0, 0) != 0)
		return "C1: setpgid";
	subject_on_signal(SIGUSR1, on_usr1, 0);
	record();
	return NULL;
}

static const char *check_c1(void *arg)
{
	(void)arg;
	const char *why = verify_self("C1");
	if (why)
		return why;
	for (int i = 0; i < 5000 && usr1_from == 0; i++)
		usleep(1000);
	if (usr1_from != getppid()) {
		snprintf(why_buf, sizeof(why_buf), "C1: SIGUSR1 from %d, wanted its parent %d", usr1_from, getppid());
		return why_buf;
	}
	return NULL;
}

/* --- plain members: D1, and D (another level down) with its child. */
static const char *setup_plain(void *arg)
{
	(void)arg;
	record();
	return NULL;
}

static const char *check_plain(void *arg)
{
	return verify_self((const char *)arg);
}

static struct subject_child d1;

static const char *setup_d(void *arg)
{
	(void)arg;
	record();
	d1 = subject_fork_prepared("D1", setup_plain, check_plain, "D1");
	return getpid() == 1 ? NULL : "D: not pid 1 of its namespace";
}

static const char *check_d(void *arg)
{
	(void)arg;
	const char *why = verify_self("D");
	if (why == NULL && (getpid() != 1 || getppid() != 0))
		why = "D: not pid 1 with parent 0";
	if (why == NULL && getpgid(d1.pid) != getpgrp())
		why = "D: D1 left its group";
	return why ? why : verdict(d1, "D1");
}

/* --- N: the nested namespace's init. */
static struct {
	struct subject_child c1, s2, d;
	pid_t s, z;
	int deeper;
} n;

static volatile pid_t thread_tid;
static volatile int thread_check, thread_ok = -1;

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	while (!thread_check)
		usleep(1000);
	thread_ok = (pid_t)syscall(SYS_gettid) == thread_tid;
	return NULL;
}

static const char *setup_n(void *arg)
{
	(void)arg;
	if (getpid() != 1)
		return "N: not pid 1 of its namespace";
	record();
	n.c1 = subject_fork_prepared("C1", setup_c1, check_c1, NULL);

	/* S makes a session, forks S2 and exits; S2's verdict pipe is N's. */
	int sp[2];
	if (pipe(sp) != 0)
		return "N: pipe";
	int s2pid[2];
	if (pipe(s2pid) != 0)
		return "N: pipe";
	n.s = fork();
	if (n.s < 0)
		return "N: fork S";
	if (n.s == 0) {
		close(sp[0]);
		setsid();
		pid_t s2 = fork();
		if (s2 == 0) {
			close(s2pid[0]);
			while (getppid() != 1)
				usleep(1000);
			record();
			if (write(s2pid[1], "r", 1) != 1)
				_exit(2);
			close(s2pid[1]);
			subject_term = 0;
			subject_wait_term();
			const char *why = verify_self("S2");
			if (why != NULL && write(sp[1], why, strlen(why)) < 0)
				_exit(2);
			_exit(why == NULL ? 0 : 1);
		}
		_exit(write(s2pid[1], &s2, sizeof(s2)) == sizeof(s2) ? 0 : 1);
	}
	close(sp[1]);
	close(s2pid[1]);
	pid_t s2 = 0;
	if (read(s2pid[0], &s2, sizeof(s2)) != sizeof(s2))
		return "N: S2's pid";
	int st;
	if (waitpid(n.s, &st, 0) != n.s)
		return "N: waitpid S";
	n.s2 = (struct subject_child){ .pid = s2, .fd = sp[0] };
	/* S2 is N's now (the orphan's reaper), and has recorded its ids. */
	char r;
	if (read(s2pid[0], &r, 1) != 1)
		return "N: S2 did not record its ids";
	close(s2pid[0]);

	n.z = fork();
	if (n.z == 0)
		_exit(7);
	siginfo_t si;
	if (waitid(P_PID, n.z, &si, WEXITED | WNOWAIT) != 0)
		return "N: waitid Z";
	if (n.deeper)
		n.d = subject_clone_prepared("D", CLONE_NEWPID, setup_d, check_d, NULL);
	pthread_detach(subject_thread(thread_main, NULL));
	while (thread_tid == 0)
		usleep(1000);
	usleep(50000);
	return NULL;
}

static const char *check_n(void *arg)
{
	(void)arg;
	const char *why = verify_self("N");
	if (why)
		return why;
	if (getpid() != 1 || getppid() != 0 || getpgrp() != 0 || getsid(0) != 0)
		return "N: not pid 1, or sees its parent, group or session";
	thread_check = 1;
	for (int i = 0; i < 5000 && thread_ok < 0; i++)
		usleep(1000);
	if (thread_ok != 1)
		return thread_ok < 0 ? "N: its thread does not answer" : "N: its thread has another tid";
	if (getpgid(n.c1.pid) != n.c1.pid)
		return "N: C1 not in its own group";
	if (getsid(n.s2.pid) != n.s || getpgid(n.s2.pid) != n.s) {
		snprintf(why_buf, sizeof(why_buf), "N: S2 %d in session %d group %d, wanted %d (its leader gone)", n.s2.pid,
			 getsid(n.s2.pid), getpgid(n.s2.pid), n.s);
		return why_buf;
	}
	int st;
	if (waitpid(n.z, &st, WNOHANG) != n.z || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		return "N: zombie Z not there with exit 7";
	if (kill(n.c1.pid, SIGUSR1) != 0)
		return "N: kill C1 by its pid here";
	if ((why = verdict(n.c1, "C1")) != NULL || (why = verdict(n.s2, "S2 (reaped by N)")) != NULL)
		return why;
	if (n.deeper && (why = verdict(n.d, "D")) != NULL)
		return why;
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	n.deeper = (int)subject_opt_long("deeper", 0);
	if (subject_opt_long("own-ns", 0))
		subject_become_pidns_init();
	record();
	int unshared = (int)subject_opt_long("unshare", 0);
	if (unshared && unshare(CLONE_NEWPID) != 0)
		subject_fail("unshare(CLONE_NEWPID): %s", strerror(errno));
	struct subject_child nn = subject_clone_prepared("N", unshared ? 0 : CLONE_NEWPID, setup_n, check_n, NULL);

	subject_ready();
	subject_wait_term();

	const char *why = verify_self("R");
	if (why)
		subject_fail("%s", why);
	if (kill(nn.pid, 0) != 0)
		subject_fail("R: N (%d here) is gone", nn.pid);
	if (unshared) {
		pid_t probe = fork();
		if (probe == 0)
			_exit(getppid() == 0 ? 0 : 1);
		int st;
		if (probe < 0 || waitpid(probe, &st, 0) != probe || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			subject_fail("R: a child forked after the restore is not born in N's namespace");
	}
	if ((why = verdict(nn, "N")) != NULL)
		subject_fail("%s", why);
	subject_pass();
}
