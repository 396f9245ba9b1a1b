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
	uint64_t sum;
	unsigned char *data = subject_data(DATA_BYTES, 0xbadf00d, &sum);

	struct subject_counts c = subject_count_until_term(&counter, 10);
	if (c.at_term == c.at_ready)
		subject_fail("counter did not move on: ready %llu term %llu", (unsigned long long)c.at_ready,
			     (unsigned long long)c.at_term);
	if (subject_hash(data, DATA_BYTES) != sum)
		subject_fail("data area checksum changed");
	if (!fd_works(kind, KIND_FD))
		subject_fail("%s fd %d no longer works: %s", kind, KIND_FD, strerror(errno));
	subject_pass();
}
