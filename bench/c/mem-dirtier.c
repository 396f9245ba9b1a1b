/*
 * Benchmark subject for iterative dumps: map N MiB of private anonymous
 * memory, fill every page, report "pid addr len" in READY_FILE, then keep
 * writing PERCENT % of its pages per second (a cursor sweeps the area, one
 * batch every 10 ms), forever.
 *
 * usage: mem-dirtier MIB PERCENT READY_FILE
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "ready.h"

int main(int argc, char **argv)
{
	close_range(3, ~0u, 0);
	if (argc != 4) {
		fprintf(stderr, "usage: %s MIB PERCENT READY_FILE\n", argv[0]);
		return 2;
	}
	size_t len = (size_t)strtoul(argv[1], NULL, 10) << 20;
	double percent = strtod(argv[2], NULL);
	unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	size_t pages = len / 4096;
	for (size_t p = 0; p < pages; p++)
		memset(mem + p * 4096, (int)(p * 131 + 7), 4096);
	if (write_ready(argv[3], "%d %p %zu\n", getpid(), (void *)mem, len) != 0)
		return 1;
	/* Batches every 10 ms; the fraction carries over so small rates still write. */
	double per_batch = (double)pages * percent / 100.0 / 100.0, owed = 0;
	size_t cursor = 0;
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	for (unsigned round = 1;; round++) {
		owed += per_batch;
		while (owed >= 1.0) {
			mem[cursor * 4096 + (round % 4096)] = (unsigned char)round;
			cursor = (cursor + 1) % pages;
			owed -= 1.0;
		}
		nanosleep(&tick, NULL);
	}
}
