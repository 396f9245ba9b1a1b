/*
 * Benchmark subject for a many-threaded process: N-1 extra threads with
 * small stacks, all waiting; when all run, "pid" goes into READY_FILE
 * (temp + rename). With --baseline it creates N-1 threads that return at
 * once, joins them, and prints the seconds that took.
 *
 * usage: thread-hold N READY_FILE | thread-hold --baseline N
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ready.h"

/* Descriptors leaked by whoever started us are not part of the benchmark. */
static void close_inherited(void)
{
	close_range(3, ~0u, 0);
}

#define STACK_BYTES (256 << 10)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int started;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	started++;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	for (;;)
		pause();
	return NULL;
}

static void *quick(void *arg)
{
	return arg;
}

int main(int argc, char **argv)
{
	close_inherited();
	int baseline = argc == 3 && strcmp(argv[1], "--baseline") == 0;
	if (argc != 3) {
		fprintf(stderr, "usage: %s N READY_FILE | %s --baseline N\n", argv[0], argv[0]);
		return 2;
	}
	int n = atoi(argv[baseline ? 2 : 1]);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK_BYTES);
	pthread_t *ids = calloc((size_t)n, sizeof(*ids));
	double t0 = now_s();
	for (int i = 1; i < n; i++) {
		int err = pthread_create(&ids[i], &attr, baseline ? quick : waiter, NULL);
		if (err != 0) {
			fprintf(stderr, "pthread_create: %s\n", strerror(err));
			return 1;
		}
	}
	if (baseline) {
		for (int i = 1; i < n; i++)
			pthread_join(ids[i], NULL);
		printf("%.6f\n", now_s() - t0);
		return 0;
	}
	pthread_mutex_lock(&lock);
	while (started < n - 1)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	if (write_ready(argv[2], "%d\n", getpid()) != 0)
		return 1;
	for (;;)
		pause();
}
