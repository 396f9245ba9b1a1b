/*
 * zombie-killed: unreaped children killed by SIGKILL and by SIGSEGV (a
 * real fault) stay zombies of their parent; after restore waitpid reports
 * each one killed by its signal. A SIGKILLed zombie is the case where the
 * restored task dies before it can be detached from.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	/* No core file for the faulting child. */
	struct rlimit nocore = { 0, 0 };
	setrlimit(RLIMIT_CORE, &nocore);
	const int sigs[2] = { SIGKILL, SIGSEGV };
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			subject_fail("fork: %m");
		if (pids[i] == 0) {
			signal(SIGTERM, SIG_DFL);
			if (sigs[i] == SIGSEGV)
				*(volatile int *)0 = 1;
			raise(sigs[i]);
			_exit(13);
		}
		siginfo_t si;
		if (waitid(P_PID, pids[i], &si, WEXITED | WNOWAIT) != 0)
			subject_fail("waitid: %m");
	}
	subject_ready();
	subject_wait_term();
	for (int i = 0; i < 2; i++) {
		int status;
		if (waitpid(pids[i], &status, 0) != pids[i])
			subject_fail("waitpid %d: %m", pids[i]);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != sigs[i])
			subject_fail("child %d: status 0x%x, want killed by %d", pids[i], status, sigs[i]);
	}
	subject_pass();
}
