/*
 * Sessions in a pid namespace whose members are not below their leader:
 * the subject is the init of a pid namespace of its own (launched as
 * pid-ns.c is), in a session of its own, with
 *   - L, a session leader that forked H; H made a process group of its own,
 *     forked M and exited: M, re-parented to init, stays in L's session
 *     (L alive, not M's ancestor) and in H's group, whose leader is gone;
 *   - P, which forked Z; Z made a session, forked W and exited, and P never
 *     reaps it: W, re-parented to init, is in the session and group of a
 *     zombie (zdtm's zombie_leader).
 * Every task records the ids it sees and checks them after the restore;
 * init checks M's and W's parent, group and session, and Z's exit status
 * through P.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct ids { pid_t pid, ppid, pgrp, sid; };

static struct { pid_t h, m, z, w; int settled; } *shared;

/* Wait for SIGTERM, then write to fd why the ids differ from those recorded (nothing if they do not). */
static void hold_and_report(int fd, const char *who, const char *(*extra)(void))
{
	struct ids was = { getpid(), getppid(), getpgrp(), getsid(0) };
	__sync_fetch_and_add(&shared->settled, 1);
	subject_term = 0;
	subject_wait_term();
	struct ids now = { getpid(), getppid(), getpgrp(), getsid(0) };
	char why[256] = "";
	if (memcmp(&now, &was, sizeof(now)) != 0)
		snprintf(why, sizeof(why), "%s: pid/ppid/pgrp/sid %d/%d/%d/%d, was %d/%d/%d/%d", who, now.pid, now.ppid,
			 now.pgrp, now.sid, was.pid, was.ppid, was.pgrp, was.sid);
	else if (extra && extra())
		snprintf(why, sizeof(why), "%s: %s", who, extra());
	if (why[0] != '\0' && write(fd, why, strlen(why)) < 0)
		_exit(2);
	_exit(why[0] == '\0' ? 0 : 1);
}

static const char *zombie_kept(void)
{
	siginfo_t si = { 0 };
	if (waitid(P_PID, shared->z, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid != shared->z)
		return "its child Z is no zombie";
	if (si.si_code != CLD_EXITED || si.si_status != 5)
		return "its zombie Z lost its exit status";
	return NULL;
}

/* Wait until the child is re-parented to init, then hold. */
static void orphan(int fd, const char *who)
{
	while (getppid() != 1)
		usleep(1000);
	hold_and_report(fd, who, NULL);
}

static pid_t fork_or_fail(const char *what)
{
	pid_t p = fork();
	if (p < 0)
		subject_fail("fork %s: %s", what, strerror(errno));
	return p;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_become_pidns_init();
	shared = subject_shared_anon(sizeof(*shared));
	int verdict[2];
	if (pipe(verdict) != 0)
		subject_fail("pipe: %s", strerror(errno));

	pid_t l = fork_or_fail("L");
	if (l == 0) {
		setsid();
		pid_t h = fork_or_fail("H");
		if (h == 0) {
			setpgid(0, 0);
			shared->h = getpid();
			if (fork_or_fail("M") == 0) {
				shared->m = getpid();
				orphan(verdict[1], "M");
			}
			_exit(0);
		}
		waitpid(h, NULL, 0);
		hold_and_report(verdict[1], "L", NULL);
	}
	pid_t p = fork_or_fail("P");
	if (p == 0) {
		pid_t z = fork_or_fail("Z");
		if (z == 0) {
			setsid();
			if (fork_or_fail("W") == 0) {
				shared->w = getpid();
				orphan(verdict[1], "W");
			}
			_exit(5);
		}
		shared->z = z;
		hold_and_report(verdict[1], "P", zombie_kept);
	}
	close(verdict[1]);
	/* M and W are init's children once H and Z are gone; they record their ids then. */
	for (int i = 0; i < 10000 && shared->settled < 4; i++)
		usleep(1000);
	if (shared->settled < 4)
		subject_fail("only %d of L, P, M, W settled", shared->settled);
	subject_ready();
	subject_wait_term();

	const pid_t m = shared->m, w = shared->w, z = shared->z, h = shared->h;
	if (getpid() != 1)
		subject_fail("init: pid %d", getpid());
	if (getsid(m) != l || getpgid(m) != h)
		subject_fail("M %d: session %d group %d, wanted %d and %d", m, getsid(m), getpgid(m), l, h);
	if (getsid(w) != z || getpgid(w) != z)
		subject_fail("W %d: session %d group %d, wanted %d (a zombie's)", w, getsid(w), getpgid(w), z);
	/* Every child reports, then exits; M and W are init's own. */
	pid_t kids[] = { l, p, m, w };
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
		kill(kids[i], SIGTERM);
	char why[512] = "";
	ssize_t n = 0, r;
	while ((r = read(verdict[0], why + n, sizeof(why) - 1 - (size_t)n)) > 0)
		n += r;
	why[n] = '\0';
	int st, bad = 0;
	for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
		if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = 1;
	if (why[0] != '\0' || bad)
		subject_fail("%s", why[0] ? why : "a child failed");
	subject_pass();
}
