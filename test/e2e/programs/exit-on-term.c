/*
 * Waits for SIGTERM, then exits with status 7: proves that `criu-ts restore`
 * without -d waits for the restored root and passes its exit status on.
 * Prints "ready <pid>" once its handler is in place.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t term;

static void on_term(int sig)
{
	(void)sig;
	term = 1;
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	while (!term)
		nanosleep(&ts, NULL);
	return 7;
}
