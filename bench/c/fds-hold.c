/*
 * Benchmark subject with many open files of mixed kinds: N descriptors,
 * in turn a pipe (both ends), an eventfd, a regular file, a unix
 * socketpair (both ends), an epoll watching the last eventfd, a timerfd
 * and a directory. Writes "pid" into READY_FILE (temp + rename) and waits.
 *
 * usage: fds-hold N READY_FILE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "ready.h"

int main(int argc, char **argv)
{
	close_range(3, ~0u, 0);
	if (argc != 3) {
		fprintf(stderr, "usage: %s N READY_FILE\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[1]);
	struct rlimit rl = { n + 64, n + 64 };
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		if ((int)rl.rlim_cur < n + 64) {
			fprintf(stderr, "fds-hold: RLIMIT_NOFILE %lu is below %d\n", (unsigned long)rl.rlim_cur, n + 64);
			return 1;
		}
	}
	int opened = 0, last_efd = -1, p[2];
	for (int kind = 0; opened < n; kind = (kind + 1) % 7) {
		switch (kind) {
		case 0:
			if (pipe(p) == 0)
				opened += 2;
			break;
		case 1:
			last_efd = eventfd(kind, 0);
			opened++;
			break;
		case 2:
			open("/etc/hostname", O_RDONLY);
			opened++;
			break;
		case 3:
			if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0)
				opened += 2;
			break;
		case 4: {
			int ep = epoll_create1(0);
			struct epoll_event ev = { .events = EPOLLIN, .data.fd = last_efd };
			epoll_ctl(ep, EPOLL_CTL_ADD, last_efd, &ev);
			opened++;
			break;
		}
		case 5:
			timerfd_create(CLOCK_MONOTONIC, 0);
			opened++;
			break;
		case 6:
			open("/tmp", O_RDONLY | O_DIRECTORY);
			opened++;
			break;
		}
	}
	if (write_ready(argv[2], "%d\n", getpid()) != 0)
		return 1;
	for (;;)
		pause();
}
