/*
 * proc-files: /proc files of the task itself held open: 20
 * /proc/self/status, 21 /proc/self/stat read up to offset 5, 22 the
 * /proc/self directory, 23 /proc/self/cmdline.
 * After SIGTERM each one still describes this process (same pid, our
 * name), 21 keeps its offset and 22 lists our fds.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char buf[8192];

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, open("/proc/self/status", O_RDONLY), "status");
	subject_at(21, open("/proc/self/stat", O_RDONLY), "stat");
	if (read(21, buf, 5) != 5)
		subject_fail("read stat");
	subject_at(22, open("/proc/self", O_RDONLY | O_DIRECTORY), "/proc/self");
	subject_at(23, open("/proc/self/cmdline", O_RDONLY), "cmdline");

	subject_ready();
	subject_wait_term();

	char want[64];
	snprintf(want, sizeof(want), "\nPid:\t%d\n", getpid());
	ssize_t n = pread(20, buf, sizeof(buf) - 1, 0);
	buf[n < 0 ? 0 : n] = 0;
	if (n <= 0 || !strstr(buf, want) || !strstr(buf, "Name:\tproc-files"))
		subject_fail("status does not describe us");
	if (lseek(21, 0, SEEK_CUR) != 5)
		subject_fail("stat offset %ld", (long)lseek(21, 0, SEEK_CUR));
	n = pread(21, buf, sizeof(buf) - 1, 0);
	buf[n < 0 ? 0 : n] = 0;
	if (atoi(buf) != getpid())
		subject_fail("stat is about %d", atoi(buf));
	int fd = openat(22, "fd/23", O_RDONLY);
	if (fd < 0)
		subject_fail("/proc/self dir: no fd/23");
	close(fd);
	n = pread(23, buf, sizeof(buf) - 1, 0);
	if (n <= 0 || !strstr(buf, "proc-files"))
		subject_fail("cmdline");
	subject_pass();
}
