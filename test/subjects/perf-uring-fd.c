/*
 * perf-uring-fd: counter-loop plus one fd of a kind criu-ts cannot dump
 * (--kind perf: a perf_event counting our own task clock; --kind io_uring:
 * an io_uring instance). A dump must refuse it and leave the task exactly as
 * it was: after SIGTERM we check the counter kept climbing by +1 steps, the
 * data area is intact and the fd still works (the counter still counts, the
 * ring still answers a NOP). Exits 3 without ready if the kernel refuses to
 * create the fd, so the harness can skip with the reason from the log.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DATA_BYTES (1 << 20)
#define KIND_FD 40

static volatile uint64_t counter;

static int open_perf(void)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
}

static int open_io_uring(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	return (int)syscall(SYS_io_uring_setup, 4, &p);
}

/* The fd still does its job: perf counts, io_uring accepts an enter call. */
static int fd_works(const char *kind, int fd)
{
	if (strcmp(kind, "perf") == 0) {
		uint64_t v = 0;
		return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) && v > 0;
	}
	return syscall(SYS_io_uring_enter, fd, 0, 0, 0, NULL, 0) == 0;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	const char *kind = subject_opt("kind", "perf");
	int fd = strcmp(kind, "perf") == 0 ? open_perf() : strcmp(kind, "io_uring") == 0 ? open_io_uring() : -2;
	if (fd == -2)
		subject_fail("unknown --kind %s", kind);
	if (fd < 0) {
		subject_log("cannot create a %s fd: %s", kind, strerror(errno));
		exit(3);
	}
	if (dup2(fd, KIND_FD) != KIND_FD)
		subject_fail("dup2");
	close(fd);
	unsigned char *data = malloc(DATA_BYTES);
	if (data == NULL)
		subject_fail("malloc");
	subject_fill(data, DATA_BYTES, 0xbadf00d);
	uint64_t sum = subject_hash(data, DATA_BYTES);
	uint64_t bad_steps = 0;
	struct timespec ts = { 0, 1000000 };

	subject_ready();
	uint64_t at_ready = counter;
	while (!subject_term) {
		uint64_t prev = counter;
		counter = prev + 1;
		if (counter != prev + 1)
			bad_steps++;
		nanosleep(&ts, NULL);
	}
	uint64_t at_term = counter;
	for (int i = 0; i < 10; i++) {
		counter = counter + 1;
		nanosleep(&ts, NULL);
	}
	if (bad_steps != 0)
		subject_fail("%llu non-monotonic steps", (unsigned long long)bad_steps);
	if (at_term <= at_ready || counter != at_term + 10)
		subject_fail("counter did not move on: ready %llu term %llu now %llu", (unsigned long long)at_ready,
			     (unsigned long long)at_term, (unsigned long long)counter);
	if (subject_hash(data, DATA_BYTES) != sum)
		subject_fail("data area checksum changed");
	if (!fd_works(kind, KIND_FD))
		subject_fail("%s fd %d no longer works: %s", kind, KIND_FD, strerror(errno));
	subject_pass();
}
