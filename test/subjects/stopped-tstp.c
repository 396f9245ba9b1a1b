/*
 * stopped-tstp: a child stopped by SIGTSTP (in its own process group, so
 * the job-control stop is not discarded as for an orphaned group) must be
 * stopped by SIGTSTP again after restore: its parent's waitid(WSTOPPED)
 * reports si_status SIGTSTP, not SIGSTOP. Then it continues and exits 0.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	pid_t pid = subject_idle_child();
	if (setpgid(pid, pid) != 0)
		subject_fail("setpgid: %m");
	if (kill(pid, SIGTSTP) != 0)
		subject_fail("kill SIGTSTP: %m");
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, pid, &si, WSTOPPED | WNOWAIT) != 0)
		subject_fail("waitid before: %m");
	if (si.si_code != CLD_STOPPED || si.si_status != SIGTSTP)
		subject_fail("before: code %d status %d", si.si_code, si.si_status);
	subject_ready();
	subject_wait_term();

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, pid, &si, WSTOPPED | WNOWAIT | WNOHANG) != 0)
		subject_fail("waitid after: %m");
	if (si.si_pid != pid || si.si_code != CLD_STOPPED || si.si_status != SIGTSTP)
		subject_fail("after: pid %d code %d status %d (want stopped by %d)", si.si_pid, si.si_code, si.si_status, SIGTSTP);
	kill(pid, SIGCONT);
	kill(pid, SIGKILL);
	int status;
	if (waitpid(pid, &status, 0) != pid)
		subject_fail("waitpid: %m");
	subject_pass();
}
