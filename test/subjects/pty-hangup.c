/*
 * pty-hangup: slaves whose master is gone. Two slave fds (20, 21: two open
 * descriptions, 20 our controlling terminal until then) stay open after
 * the master is closed, which hangs them up. After SIGTERM: both are still
 * hung up (read gives 0, write and ioctls EIO), their node is gone
 * ("(deleted)"), and we have no controlling terminal.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static void check_hung_up(int fd)
{
	char buf[8], path[64], link[128];
	if (read(fd, buf, sizeof(buf)) != 0)
		subject_fail("fd %d: read did not give 0", fd);
	errno = 0;
	if (write(fd, "x", 1) != -1 || errno != EIO)
		subject_fail("fd %d: write: %s", fd, strerror(errno));
	struct termios t;
	if (tcgetattr(fd, &t) == 0 || errno != EIO)
		subject_fail("fd %d: tcgetattr: %s", fd, strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	if (!strstr(link, "(deleted)"))
		subject_fail("fd %d: %s", fd, link);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	char name[64];
	if (m < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, name, sizeof(name)))
		subject_fail("ptmx");
	subject_at(20, open(name, O_RDWR), "slave");
	subject_at(21, open(name, O_RDWR), "second slave");
	signal(SIGHUP, SIG_IGN);
	close(m);
	check_hung_up(20);

	subject_ready();
	subject_wait_term();

	check_hung_up(20);
	check_hung_up(21);
	if (open("/dev/tty", O_RDWR) >= 0)
		subject_fail("still a controlling terminal");
	subject_pass();
}
