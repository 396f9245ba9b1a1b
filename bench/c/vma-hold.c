/*
 * Benchmark subject for a process with many mappings: N VMAs in runs of
 * three one-page areas (zdtm's maps06 shape): a private mapping of a
 * one-page file, written (so it holds an anonymous COW page), an anonymous
 * read-write page, written, and a PROT_NONE anonymous page that keeps the
 * next run from merging with this one. When all exist it writes "pid" into
 * READY_FILE (temp + rename) and waits.
 *
 * usage: vma-hold N READY_FILE   (the file lives beside READY_FILE, unlinked
 *        afterwards would make it a ghost: it is kept as READY_FILE.map)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "ready.h"

int main(int argc, char **argv)
{
	close_range(3, ~0u, 0);
	if (argc != 3) {
		fprintf(stderr, "usage: %s N READY_FILE\n", argv[0]);
		return 2;
	}
	long ps = sysconf(_SC_PAGESIZE);
	int runs = atoi(argv[1]) / 3;
	char path[4096];
	snprintf(path, sizeof(path), "%s.map", argv[2]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, ps) != 0) {
		perror(path);
		return 1;
	}
	char *base = mmap(NULL, ps * 3 * runs, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (int i = 0; i < runs; i++) {
		int *f = mmap(base + i * 3 * ps, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
		int *a = mmap(base + (i * 3 + 1) * ps, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (f == MAP_FAILED || a == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		f[0] = i * 2;
		a[0] = i;
	}
	close(fd);
	if (write_ready(argv[2], "%d\n", getpid()) != 0)
		return 1;
	for (;;)
		pause();
}
