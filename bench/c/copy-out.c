/*
 * Dump baseline: copy LEN bytes at ADDR of process PID into OUT_FILE the
 * plain way a C program would: process_vm_readv into one reused buffer, then
 * write(2), chunk by chunk. The output file is created fresh (O_TRUNC), like
 * a pages image. Prints the seconds spent, open to close, on stdout.
 *
 * usage: copy-out PID ADDR LEN OUT_FILE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_BYTES (32u << 20)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s PID ADDR LEN OUT_FILE\n", argv[0]);
		return 2;
	}
	pid_t pid = (pid_t)atoi(argv[1]);
	unsigned long addr = strtoul(argv[2], NULL, 0);
	size_t len = strtoul(argv[3], NULL, 0);
	double t0 = now_s();
	char *buf = malloc(CHUNK_BYTES);
	int fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (buf == NULL || fd < 0) {
		perror("setup");
		return 1;
	}
	for (size_t off = 0; off < len;) {
		size_t n = len - off < CHUNK_BYTES ? len - off : CHUNK_BYTES;
		struct iovec local = { buf, n }, remote = { (void *)(addr + off), n };
		ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (got <= 0) {
			perror("process_vm_readv");
			return 1;
		}
		for (ssize_t w = 0; w < got;) {
			ssize_t k = write(fd, buf + w, (size_t)(got - w));
			if (k <= 0) {
				perror("write");
				return 1;
			}
			w += k;
		}
		off += (size_t)got;
	}
	close(fd);
	printf("%.6f\n", now_s() - t0);
	return 0;
}
