/*
 * ns-fd: namespace files held open: /proc/self/ns/net at fd 20,
 * /proc/self/ns/uts at fd 21 (O_CLOEXEC). After SIGTERM: both still name
 * the task's own namespaces (same inode as /proc/self/ns/<type> now), with
 * their fd flags. --extra PATH opens PATH at fd 22 too (the tests pass a
 * namespace the task is not in, which the dump refuses).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static void check(int fd, const char *path, int cloexec)
{
	struct stat a, b;
	if (fstat(fd, &a) || stat(path, &b) || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		subject_fail("fd %d is not %s", fd, path);
	if (!!(fcntl(fd, F_GETFD) & FD_CLOEXEC) != cloexec)
		subject_fail("fd %d: FD_CLOEXEC lost or gained", fd);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, open("/proc/self/ns/net", O_RDONLY), "net ns");
	subject_at(21, open("/proc/self/ns/uts", O_RDONLY), "uts ns");
	fcntl(21, F_SETFD, FD_CLOEXEC);
	const char *extra = subject_opt("extra", NULL);
	if (extra)
		subject_at(22, open(extra, O_RDONLY), extra);

	subject_ready();
	subject_wait_term();

	check(20, "/proc/self/ns/net", 0);
	check(21, "/proc/self/ns/uts", 1);
	subject_pass();
}
