/*
 * A task restored inside a blocking syscall that a signal handler must
 * interrupt: `while (!woken) sigsuspend(&empty)` with a SIGUSR1 handler.
 * The harness delivers SIGUSR1 before the restored task gets to run (it is
 * restored stopped); as with the kernel, the handler runs and sigsuspend
 * returns EINTR, so the loop ends. Had the call simply been issued again
 * after the handler, the task would sleep on with its flag set. Once woken
 * it writes `woke` in its work dir, then waits for SIGTERM as usual.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "subject.h"

static volatile sig_atomic_t woken;
static volatile sig_atomic_t eintr;

static void on_usr1(int sig)
{
	(void)sig;
	woken = 1;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	if (sigaction(SIGUSR1, &sa, NULL))
		subject_fail("sigaction");
	sigset_t empty;
	sigemptyset(&empty);
	subject_ready();
	while (!woken && !subject_term) {
		if (sigsuspend(&empty) < 0 && errno == EINTR)
			eintr = 1;
	}
	if (!woken)
		subject_fail("SIGTERM came before SIGUSR1");
	FILE *f = fopen("woke", "w"); /* in the work dir, our cwd */
	if (f == NULL)
		subject_fail("fopen woke");
	fclose(f);
	subject_wait_term();
	if (!eintr)
		subject_fail("sigsuspend did not return EINTR");
	subject_pass();
}
