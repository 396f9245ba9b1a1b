/*
 * Benchmark subject for lazy restore: map N MiB of private anonymous
 * memory and fill every page, report "pid" in READY_FILE, then loop every
 * 200 us reading CLOCK_REALTIME. When two readings are more than 50 ms
 * apart (the task was stopped: dumped, then restored), it stores the new
 * reading, the time of its first instructions after the restore, at
 * offset 0 of RECORD_FILE (mapped shared: whoever restored it reads it).
 * It never touches its big area again: what is measured is how soon the
 * task runs, not how soon its memory is in place.
 *
 * usage: lazy-first MIB READY_FILE RECORD_FILE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "ready.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	close_range(3, ~0u, 0);
	if (argc != 4) {
		fprintf(stderr, "usage: %s MIB READY_FILE RECORD_FILE\n", argv[0]);
		return 2;
	}
	size_t len = (size_t)strtoul(argv[1], NULL, 10) << 20;
	unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t p = 0; p < len / 4096; p++)
		memset(mem + p * 4096, (int)(p * 131 + 7), 4096);
	int fd = open(argv[3], O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 4096) != 0) {
		perror("record file");
		return 1;
	}
	volatile uint64_t *rec = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (rec == MAP_FAILED) {
		perror("mmap record");
		return 1;
	}
	close(fd);
	if (write_ready(argv[2], "%d\n", getpid()) != 0)
		return 1;
	struct timespec tick = { 0, 200 * 1000 };
	uint64_t last = now_ns();
	for (;;) {
		uint64_t t = now_ns();
		if (t - last > 50ull * 1000 * 1000)
			rec[0] = t;
		last = t;
		nanosleep(&tick, NULL);
	}
}
