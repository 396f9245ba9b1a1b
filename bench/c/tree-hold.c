/*
 * Benchmark subject for a process tree: the root forks N-1 children that
 * each touch a little memory of their own and wait; when all exist the root
 * writes "pid" into READY_FILE (temp + rename) and waits too.
 * With --baseline it instead forks N-1 children that exit at once, reaps
 * them, and prints the seconds that took: the floor for creating the tree.
 *
 * usage: tree-hold N READY_FILE | tree-hold --baseline N
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ready.h"

/* Descriptors leaked by whoever started us are not part of the benchmark. */
static void close_inherited(void)
{
	close_range(3, ~0u, 0);
}

#define CHILD_BYTES (64 << 10)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	close_inherited();
	if (argc == 3 && strcmp(argv[1], "--baseline") == 0) {
		int n = atoi(argv[2]);
		double t0 = now_s();
		for (int i = 1; i < n; i++) {
			pid_t p = fork();
			if (p == 0)
				_exit(0);
			if (p < 0) {
				perror("fork");
				return 1;
			}
		}
		while (wait(NULL) > 0)
			;
		printf("%.6f\n", now_s() - t0);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: %s N READY_FILE | %s --baseline N\n", argv[0], argv[0]);
		return 2;
	}
	int n = atoi(argv[1]);
	int ready[2];
	if (pipe(ready) != 0) {
		perror("pipe");
		return 1;
	}
	for (int i = 1; i < n; i++) {
		pid_t p = fork();
		if (p < 0) {
			perror("fork");
			return 1;
		}
		if (p == 0) {
			char *mem = malloc(CHILD_BYTES);
			if (mem != NULL)
				memset(mem, i & 0xff, CHILD_BYTES);
			close(ready[0]);
			/* One byte each: the root knows when every child has its memory. */
			if (write(ready[1], "x", 1) != 1)
				_exit(1);
			close(ready[1]);
			for (;;)
				pause();
		}
	}
	close(ready[1]);
	char c;
	for (int i = 1; i < n; i++)
		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "a child died\n");
			return 1;
		}
	close(ready[0]);
	if (write_ready(argv[2], "%d\n", getpid()) != 0)
		return 1;
	for (;;)
		pause();
}
