/*
 * signals: per-signal dispositions with distinct flags, a blocked mask, an
 * alternate stack, and signals left pending across ready: a blocked SIGUSR1
 * from raise() and two queued SIGRTMIN+1 with values. After SIGTERM all of
 * it must read back the same, and the pending signals must be delivered on
 * unblock with their siginfo (sender, code, value, order) intact.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int usr1_count, usr1_code, usr1_pid, rt_count, rt_values[4];

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	usr1_count++;
	usr1_code = si->si_code;
	usr1_pid = si->si_pid;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	if (rt_count < 4)
		rt_values[rt_count] = si->si_value.sival_int;
	rt_count++;
}

static void on_usr2(int sig, siginfo_t *si, void *uc) {}
static void on_hup(int sig) {}

struct expect {
	int sig;
	void *handler;
	int flags;
};

#define OUR_FLAGS (SA_RESTART | SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESETHAND)

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int rt = SIGRTMIN + 1;
	struct expect ex[] = {
		{ SIGUSR1, (void *)on_usr1, SA_SIGINFO },
		{ SIGUSR2, (void *)on_usr2, SA_SIGINFO | SA_RESTART },
		{ SIGHUP, (void *)on_hup, SA_ONSTACK | SA_NODEFER },
		{ SIGQUIT, (void *)on_hup, SA_RESETHAND },
		{ rt, (void *)on_rt, SA_SIGINFO | SA_RESTART },
		{ SIGINT, (void *)SIG_IGN, 0 },
	};
	int n = sizeof(ex) / sizeof(ex[0]);
	for (int i = 0; i < n; i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = (void (*)(int, siginfo_t *, void *))ex[i].handler;
		sa.sa_flags = ex[i].flags;
		sigemptyset(&sa.sa_mask);
		sigaddset(&sa.sa_mask, SIGWINCH); /* a per-handler mask worth restoring */
		if (sigaction(ex[i].sig, &sa, NULL) != 0)
			subject_fail("sigaction %d", ex[i].sig);
	}

	stack_t ss = { .ss_sp = malloc(65536), .ss_size = 65536, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0)
		subject_fail("sigaltstack");

	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGPIPE);
	sigaddset(&block, rt);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR1);
	union sigval v1 = { .sival_int = 4242 }, v2 = { .sival_int = 4343 };
	sigqueue(getpid(), rt, v1);
	sigqueue(getpid(), rt, v2);

	subject_ready();
	subject_wait_term(); /* keeps our mask: USR1/PIPE/rt stay blocked while waiting */

	for (int i = 0; i < n; i++) {
		struct sigaction sa;
		sigaction(ex[i].sig, NULL, &sa);
		if ((void *)sa.sa_sigaction != ex[i].handler)
			subject_fail("signal %d: handler changed", ex[i].sig);
		if ((int)(sa.sa_flags & OUR_FLAGS) != ex[i].flags)
			subject_fail("signal %d: flags 0x%x, want 0x%x", ex[i].sig, (int)(sa.sa_flags & OUR_FLAGS), ex[i].flags);
		if (ex[i].handler != (void *)SIG_IGN && !sigismember(&sa.sa_mask, SIGWINCH))
			subject_fail("signal %d: sa_mask lost SIGWINCH", ex[i].sig);
	}
	stack_t cur;
	if (sigaltstack(NULL, &cur) != 0 || cur.ss_sp != ss.ss_sp || cur.ss_size != ss.ss_size || cur.ss_flags != 0)
		subject_fail("sigaltstack changed: sp %p size %zu flags %d", cur.ss_sp, cur.ss_size, cur.ss_flags);
	sigset_t mask, pend;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	if (!sigismember(&mask, SIGUSR1) || !sigismember(&mask, SIGPIPE) || !sigismember(&mask, rt) ||
	    sigismember(&mask, SIGUSR2))
		subject_fail("blocked mask changed");
	sigpending(&pend);
	if (!sigismember(&pend, SIGUSR1) || !sigismember(&pend, rt))
		subject_fail("pending signals lost (USR1 %d, RT %d)", sigismember(&pend, SIGUSR1), sigismember(&pend, rt));
	if (usr1_count != 0 || rt_count != 0)
		subject_fail("blocked signals were delivered early");

	sigprocmask(SIG_UNBLOCK, &block, NULL);
	if (usr1_count != 1 || usr1_code != SI_TKILL || usr1_pid != getpid())
		subject_fail("SIGUSR1: count %d code %d pid %d", usr1_count, usr1_code, usr1_pid);
	if (rt_count != 2 || rt_values[0] != 4242 || rt_values[1] != 4343)
		subject_fail("SIGRTMIN+1: count %d values %d %d", rt_count, rt_values[0], rt_values[1]);
	subject_pass();
}
