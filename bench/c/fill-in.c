/*
 * Restore baseline: map LEN bytes of fresh anonymous memory and pread
 * IN_FILE into it, the way a plain program would load a memory image. The
 * first touch of fresh pages is part of the cost, as it is for a restore.
 * Prints the seconds spent, mmap to the last byte read, on stdout.
 *
 * usage: fill-in IN_FILE LEN
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s IN_FILE LEN\n", argv[0]);
		return 2;
	}
	size_t len = strtoul(argv[2], NULL, 0);
	double t0 = now_s();
	int fd = open(argv[1], O_RDONLY);
	char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || mem == MAP_FAILED) {
		perror("setup");
		return 1;
	}
	for (size_t off = 0; off < len;) {
		ssize_t got = pread(fd, mem + off, len - off, (off_t)off);
		if (got <= 0) {
			perror("pread");
			return 1;
		}
		off += (size_t)got;
	}
	close(fd);
	printf("%.6f\n", now_s() - t0);
	return 0;
}
