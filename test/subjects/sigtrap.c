/*
 * sigtrap: a SIGTRAP handler (SA_SIGINFO, with a sa_mask) survives the
 * checkpoint. ptrace drives the task with single-step traps, which are
 * forced SIGTRAPs: if SIGTRAP were blocked while the task is held, the
 * kernel would reset the handler to SIG_DFL. After SIGTERM the action
 * must read back the same, and raise(SIGTRAP) must run the handler.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <string.h>

static volatile int traps, trap_code;

static void on_trap(int sig, siginfo_t *si, void *uc)
{
	traps++;
	trap_code = si->si_code;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_on_signal(SIGTRAP, on_trap, SIGUSR1);
	subject_ready();
	subject_wait_term();

	struct sigaction now;
	if (sigaction(SIGTRAP, NULL, &now) != 0)
		subject_fail("sigaction read: %m");
	if (now.sa_sigaction != on_trap)
		subject_fail("SIGTRAP handler is %p, not %p", (void *)now.sa_sigaction, (void *)on_trap);
	if ((now.sa_flags & (SA_SIGINFO | SA_RESTART)) != (SA_SIGINFO | SA_RESTART))
		subject_fail("SIGTRAP flags 0x%x", now.sa_flags);
	if (!sigismember(&now.sa_mask, SIGUSR1))
		subject_fail("SIGTRAP sa_mask lost SIGUSR1");
	sigset_t cur;
	sigprocmask(SIG_SETMASK, NULL, &cur);
	if (sigismember(&cur, SIGTRAP))
		subject_fail("SIGTRAP is blocked after restore");
	raise(SIGTRAP);
	if (traps != 1 || trap_code != SI_TKILL)
		subject_fail("handler ran %d times (si_code %d)", traps, trap_code);
	subject_pass();
}
