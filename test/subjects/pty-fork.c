/*
 * pty-fork: a terminal emulator and its shell: the parent holds the pty
 * master (20); a child starts its own session and opens the slave (21)
 * without O_NOCTTY, so it is the child's controlling terminal, then sleeps.
 * After SIGTERM (to the parent): the child still has that terminal as its
 * controlling terminal (/proc/CHILD/stat tty_nr), and the pair is still
 * connected (the line discipline echoes what the master writes).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int child_tty_nr(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		subject_fail("read %s", path);
	fclose(f);
	char *p = strrchr(buf, ')');
	int tty = -1;
	/* ") S ppid pgrp session tty_nr" */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %d", &tty) != 1)
		subject_fail("parse %s", path);
	return tty;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || dup2(m, 20) != 20)
		subject_fail("ptmx: errno %d", errno);
	close(m);
	char name[64];
	if (ptsname_r(20, name, sizeof(name)))
		subject_fail("ptsname");
	struct stat st;
	if (stat(name, &st))
		subject_fail("stat %s", name);
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);
	int ready[2];
	if (pipe(ready))
		subject_fail("pipe");
	pid_t child = fork();
	if (child == 0) {
		close(20);
		setsid();
		int s = open(name, O_RDWR);
		if (s < 0 || dup2(s, 21) != 21)
			_exit(1);
		close(s);
		close(ready[0]);
		close(ready[1]); /* tells the parent we are set up */
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	if (read(ready[0], &c, 1) != 0)
		subject_fail("child setup");
	close(ready[0]);
	sigprocmask(SIG_UNBLOCK, &term, NULL);
	if (child_tty_nr(child) != (int)st.st_rdev)
		subject_fail("child has no controlling terminal before the dump");

	subject_ready();
	subject_wait_term();

	if (child_tty_nr(child) != (int)st.st_rdev)
		subject_fail("child lost its controlling terminal: tty_nr %d, wanted %d", child_tty_nr(child), (int)st.st_rdev);
	if (write(20, "ok\n", 3) != 3)
		subject_fail("write master");
	struct pollfd pf = { .fd = 20, .events = POLLIN };
	char buf[64];
	ssize_t n = poll(&pf, 1, 2000) == 1 ? read(20, buf, sizeof(buf)) : -1;
	if (n < 2 || memcmp(buf, "ok", 2) != 0)
		subject_fail("no echo from the terminal: %zd bytes", n);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	subject_pass();
}
