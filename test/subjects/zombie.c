/*
 * zombie: the root keeps two children unreaped across the checkpoint: one
 * that called _exit(7) and one killed by SIGUSR2 (`--killed 0` leaves the
 * second out). Before ready it waits
 * (waitid WNOWAIT, which does not reap) until both are dead. At check time
 * /proc shows both as zombies of ours, and only then does waitpid(WNOHANG)
 * collect them, with exit status 7 and signal SIGUSR2 (no core dump).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* State letter and ppid of pid from /proc/PID/stat; 0 when unreadable. */
static void wait_dead(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) != 0)
		if (errno != EINTR)
			subject_fail("waitid %d: %s", pid, strerror(errno));
}

static void check(pid_t pid, int want_exit, int want_sig)
{
	int ppid = 0, state = subject_proc_state(pid, &ppid);
	if (state != 'Z')
		subject_fail("child %d state '%c', want zombie", pid, state ? state : '?');
	if (ppid != getpid())
		subject_fail("zombie %d has ppid %d, want %d", pid, ppid, getpid());
	int st = 0;
	pid_t r = waitpid(pid, &st, WNOHANG);
	if (r != pid)
		subject_fail("waitpid(%d, WNOHANG) = %d (%s)", pid, r, r < 0 ? strerror(errno) : "not ready");
	if (want_exit >= 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != want_exit))
		subject_fail("zombie %d status 0x%x, want exit %d", pid, st, want_exit);
	if (want_sig > 0 && (!WIFSIGNALED(st) || WTERMSIG(st) != want_sig || WCOREDUMP(st)))
		subject_fail("zombie %d status 0x%x, want signal %d", pid, st, want_sig);
	if (subject_proc_state(pid, &ppid) != 0)
		subject_fail("zombie %d still there after waitpid", pid);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int with_killed = (int)subject_opt_long("killed", 1);
	pid_t exited = fork();
	if (exited < 0)
		subject_fail("fork: %s", strerror(errno));
	if (exited == 0)
		_exit(7);
	pid_t killed = with_killed ? fork() : 0;
	if (killed < 0)
		subject_fail("fork: %s", strerror(errno));
	if (with_killed && killed == 0) {
		signal(SIGTERM, SIG_DFL);
		for (;;)
			pause();
	}
	wait_dead(exited);
	if (with_killed) {
		kill(killed, SIGUSR2);
		wait_dead(killed);
	}
	subject_log("zombies %d (exit 7) and %d (SIGUSR2)", exited, killed);

	subject_ready();
	subject_wait_term();
	check(exited, 7, 0);
	if (with_killed)
		check(killed, -1, SIGUSR2);
	subject_pass();
}
