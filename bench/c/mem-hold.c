/*
 * Benchmark subject: map N MiB of private anonymous memory, write distinct
 * data into every page (so no page is zero or shared), report "pid addr len"
 * in READY_FILE (temp + rename) and wait for signals forever.
 *
 * usage: mem-hold MIB READY_FILE
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "ready.h"

/* Descriptors leaked by whoever started us are not part of the benchmark. */
static void close_inherited(void)
{
	close_range(3, ~0u, 0);
}

int main(int argc, char **argv)
{
	close_inherited();
	if (argc != 3) {
		fprintf(stderr, "usage: %s MIB READY_FILE\n", argv[0]);
		return 2;
	}
	size_t len = (size_t)strtoul(argv[1], NULL, 10) << 20;
	uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* A cheap generator per word: every page differs from every other one. */
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		mem[i] = x;
	}
	if (write_ready(argv[2], "%d %p %zu\n", getpid(), (void *)mem, len) != 0)
		return 1;
	for (;;)
		pause();
}
