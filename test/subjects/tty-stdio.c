/*
 * tty-stdio: a job started from a terminal (the --shell-job case): stdin,
 * stdout and stderr are the pty slave given as --tty PATH, whose master
 * belongs to the caller (the test), outside the dump.
 * After SIGTERM: fds 0-2 are still that terminal (same name), its window
 * size (set by the caller) is seen, and writing to it works.
 * --ptmx PATH: also hold masters of another devpts instance (PATH is its
 * ptmx) up to the --tty slave's index: a master in the dump with the same
 * index as the terminal's own, which is still outside the dump.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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
	const char *ptmx = subject_opt("ptmx", NULL);
	if (ptmx) {
		struct stat st;
		if (fstat(0, &st))
			subject_fail("fstat");
		int want = (int)((major(st.st_rdev) - 136) * 256 + minor(st.st_rdev));
		for (int n = -1; n != want;) {
			int m = open(ptmx, O_RDWR | O_NOCTTY);
			if (m < 0 || ioctl(m, TIOCGPTN, &n))
				subject_fail("open %s: errno %d", ptmx, errno);
			if (n > want)
				subject_fail("%s handed out %d, past %d", ptmx, n, want);
		}
	}
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
