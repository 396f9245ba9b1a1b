/*
 * tty-stdio: a job started from a terminal (the --shell-job case): stdin,
 * stdout and stderr are the pty slave given as --tty PATH, whose master
 * belongs to the caller (the test), outside the dump.
 * After SIGTERM: fds 0-2 are still that terminal (same name), its window
 * size (set by the caller) is seen, and writing to it works.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	const char *path = subject_opt("tty", NULL);
	if (!path)
		subject_fail("--tty PATH missing");
	int fd = open(path, O_RDWR | O_NOCTTY);
	if (fd < 0)
		subject_fail("open %s: errno %d", path, errno);
	for (int i = 0; i < 3; i++)
		if (dup2(fd, i) != i)
			subject_fail("dup2 %d", i);
	close(fd);
	char before[64];
	if (ttyname_r(0, before, sizeof(before)))
		subject_fail("ttyname");

	subject_ready();
	subject_wait_term();

	char after[64];
	for (int i = 0; i < 3; i++)
		if (!isatty(i))
			subject_fail("fd %d is no longer a terminal", i);
	if (ttyname_r(0, after, sizeof(after)) || strcmp(before, after))
		subject_fail("terminal changed: %s -> %s", before, after);
	struct winsize ws;
	if (ioctl(1, TIOCGWINSZ, &ws) || ws.ws_row != 40 || ws.ws_col != 120)
		subject_fail("winsize %dx%d", ws.ws_row, ws.ws_col);
	if (write(1, "done\n", 5) != 5)
		subject_fail("write to the terminal");
	subject_pass();
}
