/*
 * criu-ts test subject library, the other tasks of a subject: children
 * that hold state across the checkpoint and report on it, idle and
 * delayed children, threads, a pid namespace's init. See subject.h.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

size_t subject_read_report(int fd, char *buf, size_t size)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, size - 1 - got);
		if (n > 0 && got + (size_t)n < size - 1) {
			got += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	buf[got] = 0;
	close(fd);
	return got;
}

/* The child's report, its pipe read to the end, and its exit; fails naming `what` unless it passed. */
static void verdict_of(struct subject_child c, const char *what)
{
	char why[1024];
	int status;
	size_t got = subject_read_report(c.fd, why, sizeof(why));
	while (waitpid(c.pid, &status, 0) < 0)
		if (errno != EINTR)
			subject_fail("%s: waitpid %d: %s", what, c.pid, strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		subject_fail("%s: child: %s", what, got ? why : "died without a verdict");
}

struct subject_child subject_fork_prepared(const char *what, const char *(*setup)(void *arg), const char *(*check)(void *arg), void *arg)
{
	return subject_clone_prepared(what, 0, setup, check, arg);
}

struct subject_child subject_clone_prepared(const char *what, unsigned long flags, const char *(*setup)(void *arg),
					    const char *(*check)(void *arg), void *arg)
{
	int verdict[2], ready[2];
	if (pipe(verdict) != 0 || pipe(ready) != 0)
		subject_fail("%s: pipe: %s", what, strerror(errno));
	/* clone with namespace flags (CLONE_NEWPID: the child is pid 1 of a new pid namespace), else fork. */
	pid_t pid = flags == 0 ? fork() : (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0)
		subject_fail("%s: fork: %s", what, strerror(errno));
	if (pid == 0) {
		/* Never subject_fail here: OUTFILE is the parent's to write. */
		close(verdict[0]);
		close(ready[0]);
		subject_term = 0;
		const char *why = setup == NULL ? NULL : setup(arg);
		if (why == NULL) {
			if (write(ready[1], "r", 1) != 1)
				_exit(2);
			close(ready[1]);
			subject_wait_term();
			why = check(arg);
		}
		if (why != NULL && write(verdict[1], why, strlen(why)) < 0)
			_exit(2);
		_exit(why == NULL ? 0 : 1);
	}
	close(verdict[1]);
	close(ready[1]);
	struct subject_child c = { .pid = pid, .fd = verdict[0] };
	char r;
	ssize_t n;
	while ((n = read(ready[0], &r, 1)) < 0 && errno == EINTR)
		;
	close(ready[0]);
	if (n != 1) {
		verdict_of(c, what);
		subject_fail("%s: child %d ended before it was ready", what, pid);
	}
	return c;
}

struct subject_child subject_fork_checker(const char *(*check)(void *arg), void *arg)
{
	return subject_fork_prepared("a checker child", NULL, check, arg);
}

void subject_child_verdict(struct subject_child c, const char *what)
{
	if (kill(c.pid, SIGTERM) != 0)
		subject_fail("%s: child %d is gone: %s", what, c.pid, strerror(errno));
	verdict_of(c, what);
}

pid_t subject_fork_quiet(void)
{
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	pid_t child = fork();
	if (child < 0)
		subject_fail("fork: %s", strerror(errno));
	if (child > 0)
		sigprocmask(SIG_SETMASK, &old, NULL);
	return child;
}

pid_t subject_idle_child(void)
{
	pid_t child = subject_fork_quiet();
	if (child == 0) {
		for (;;)
			pause();
	}
	return child;
}

void subject_answer_and_exit(int in, const char *want, int out, const char *reply)
{
	char buf[64];
	ssize_t n;
	do
		n = recv(in, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n) != 0)
		_exit(3);
	size_t len = strlen(reply);
	_exit(send(out, reply, len, 0) == (ssize_t)len ? 0 : 4);
}

int subject_delayed_writer(long delay_ms, const void *buf, size_t len, pid_t *child)
{
	int p[2];
	if (pipe(p) != 0)
		subject_fail("pipe: errno %d", errno);
	*child = fork();
	if (*child < 0)
		subject_fail("fork: errno %d", errno);
	if (*child == 0) {
		close(p[0]);
		subject_sleep_ms(delay_ms);
		_exit(write(p[1], buf, len) == (ssize_t)len ? 0 : 3);
	}
	close(p[1]);
	return p[0];
}

pthread_t subject_thread(void *(*fn)(void *), void *arg)
{
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	pthread_t th;
	int e = pthread_create(&th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0)
		subject_fail("pthread_create: error %d", e);
	return th;
}


void subject_reap_ok(pid_t child, const char *what)
{
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			subject_fail("%s: waitpid: errno %d", what, errno);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("%s: child status 0x%x", what, st);
}

int subject_proc_state(pid_t pid, pid_t *ppid)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	char *ok = fgets(line, sizeof(line), f);
	fclose(f);
	char *p = ok ? strrchr(line, ')') : NULL;
	char state;
	int parent;
	if (p == NULL || sscanf(p + 2, "%c %d", &state, &parent) != 2)
		return 0;
	if (ppid != NULL)
		*ppid = parent;
	return state;
}

/* Ours to wait for until a dump kills it; the restored init is not our child. */
static void __attribute__((noreturn)) wait_for_init(pid_t init)
{
	signal(SIGTERM, SIG_IGN);
	int st;
	while (waitpid(init, &st, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

void subject_become_pidns_init(void)
{
	if (getpid() != 1) {
		if (unshare(CLONE_NEWPID) != 0)
			subject_fail("unshare(CLONE_NEWPID): %s", strerror(errno));
		pid_t init = fork();
		if (init < 0)
			subject_fail("fork the init: %s", strerror(errno));
		if (init > 0)
			wait_for_init(init);
		if (getpid() != 1)
			subject_fail("the first child of a new pid namespace is pid %d", getpid());
	}
	if (setsid() < 0)
		subject_fail("setsid: %s", strerror(errno));
}
