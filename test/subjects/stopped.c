/*
 * stopped: two children stopped across the checkpoint, one that stopped
 * itself with raise(SIGSTOP) and one stopped by the root's kill(SIGSTOP)
 * while it slept. At check time both must still be stopped (state 'T' in
 * /proc/PID/stat); the root then sends SIGCONT and each child, running
 * again, checks its memory and exits 0 (or 1 on a mismatch).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF_BYTES (256 * 1024)

/* Fill a buffer, let body stop us, then check the buffer survived. */
static void __attribute__((noreturn)) child(int self_stop, uint64_t seed)
{
	signal(SIGTERM, SIG_DFL);
	unsigned char *buf = malloc(BUF_BYTES);
	if (buf == NULL)
		_exit(3);
	subject_fill(buf, BUF_BYTES, seed);
	uint64_t h = subject_hash(buf, BUF_BYTES);
	if (self_stop) {
		raise(SIGSTOP);
	} else {
		/* Sleep until the root has stopped and continued us; SIGCONT interrupts nothing here. */
		struct timespec ts = { 0, 5000000 };
		for (;;) {
			nanosleep(&ts, NULL);
			if (getppid() == 1)
				_exit(5);
			if (access("continued", F_OK) == 0)
				break;
		}
	}
	_exit(subject_hash(buf, BUF_BYTES) == h ? 0 : 1);
}

static void wait_stopped(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, WUNTRACED) != pid)
		if (errno != EINTR)
			subject_fail("waitpid %d: %s", pid, strerror(errno));
	if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
		subject_fail("child %d status 0x%x, want stopped", pid, st);
}

static void check(pid_t pid, const char *what)
{
	int state = subject_proc_state(pid, NULL);
	if (state != 'T')
		subject_fail("%s child %d state '%c', want 'T' (stopped)", what, pid, state ? state : '?');
}

static void finish(pid_t pid, const char *what)
{
	int st;
	pid_t r;
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (r != pid)
		subject_fail("%s child %d: waitpid %s", what, pid, strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("%s child %d status 0x%x after SIGCONT (exit 1: memory changed)", what, pid, st);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unlink("continued");
	pid_t self = fork();
	if (self < 0)
		subject_fail("fork: %s", strerror(errno));
	if (self == 0)
		child(1, 0x5e1f);
	pid_t other = fork();
	if (other < 0)
		subject_fail("fork: %s", strerror(errno));
	if (other == 0)
		child(0, 0x07e4);
	wait_stopped(self);
	kill(other, SIGSTOP);
	wait_stopped(other);

	subject_ready();
	subject_wait_term();
	check(self, "self-stopped");
	check(other, "stopped-by-parent");
	/* Tell the sleeper it may finish, then let both go. */
	FILE *f = fopen("continued", "we");
	if (f == NULL || fclose(f) != 0)
		subject_fail("create 'continued': %s", strerror(errno));
	kill(self, SIGCONT);
	kill(other, SIGCONT);
	finish(self, "self-stopped");
	finish(other, "stopped-by-parent");
	subject_pass();
}
