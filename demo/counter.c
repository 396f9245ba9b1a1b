/*
 * The demo's sample process: counts up forever, printing one line every
 * 300 ms. Everything it needs to carry on (the counter, where it is in its
 * loop, its open log file) lives in its memory, registers and file
 * descriptors, which is exactly what a checkpoint saves.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(void)
{
	/* Keep only stdin/stdout/stderr: descriptors our starter leaked are not ours to save. */
	close_range(3, ~0u, 0);
	signal(SIGTERM, on_term);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct timespec pause = { 0, 300 * 1000 * 1000 };
	unsigned long counter = 0;
	while (!stop) {
		counter++;
		printf("counter = %lu   (pid %d)\n", counter, getpid());
		nanosleep(&pause, NULL);
	}
	printf("stopped by SIGTERM at counter = %lu\n", counter);
	return 0;
}
