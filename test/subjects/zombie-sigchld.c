/*
 * zombie-sigchld: a child exited with status 5 and is still a zombie; its
 * SIGCHLD is pending (blocked) in the parent. After restore the zombie is
 * made again, and its new death must not swallow the dumped SIGCHLD:
 * unblocking delivers exactly that one (CLD_EXITED, the child's pid,
 * status 5), then waitpid reaps the child with status 5.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int chld, chld_code, chld_pid, chld_status;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	chld++;
	chld_code = si->si_code;
	chld_pid = si->si_pid;
	chld_status = si->si_status;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_on_signal(SIGCHLD, on_chld, 0);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	pid_t pid = fork();
	if (pid < 0)
		subject_fail("fork: %m");
	if (pid == 0)
		_exit(5);
	siginfo_t si;
	if (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) != 0)
		subject_fail("waitid: %m");
	sigset_t pend;
	sigpending(&pend);
	if (!sigismember(&pend, SIGCHLD))
		subject_fail("no SIGCHLD pending before");
	subject_ready();
	subject_wait_term();

	sigpending(&pend);
	if (!sigismember(&pend, SIGCHLD))
		subject_fail("SIGCHLD no longer pending");
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (chld != 1 || chld_code != CLD_EXITED || chld_pid != pid || chld_status != 5)
		subject_fail("SIGCHLD: %d delivered, code %d pid %d (want %d) status %d", chld, chld_code, chld_pid, pid, chld_status);
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 5)
		subject_fail("waitpid: status 0x%x", status);
	subject_pass();
}
