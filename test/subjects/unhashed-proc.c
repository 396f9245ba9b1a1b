/*
 * unhashed-proc: the cwd, and an fd, inside /proc/PID of a child that has
 * exited and been reaped. Those dentries are unhashed: getcwd fails with
 * ENOENT, while the fd still reads its directory's inode. A restore must
 * bring back a cwd that is again a dead /proc entry (CRIU stands in a
 * helper task with that pid while the files are opened, then lets it go),
 * not a live directory and not an error.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dead[64];


static const char *check(int fd)
{
	static char why[512];
	char buf[256];
	errno = 0;
	if (getcwd(buf, sizeof(buf)) != NULL || errno != ENOENT) {
		snprintf(why, sizeof(why), "getcwd gave %s (errno %d), want ENOENT", errno ? "an error" : buf, errno);
		return why;
	}
	ssize_t n = readlink("/proc/self/cwd", buf, sizeof(buf) - 1);
	if (n < 0)
		return "cannot read /proc/self/cwd";
	buf[n] = 0;
	if (strncmp(buf, dead, strlen(dead)) != 0) {
		snprintf(why, sizeof(why), "cwd is %s, want %s", buf, dead);
		return why;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, sizeof(why), "the fd on %s is not a directory any more", dead);
		return why;
	}
	if (kill(atoi(dead + strlen("/proc/")), 0) == 0 || errno != ESRCH) {
		snprintf(why, sizeof(why), "a process with the dead pid of %s is alive", dead);
		return why;
	}

	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	pid_t pid = subject_idle_child();
	snprintf(dead, sizeof(dead), "/proc/%d", pid);
	if (chdir(dead) != 0)
		subject_fail("chdir %s: %m", dead);
	int fd = open(dead, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		subject_fail("open %s: %m", dead);
	kill(pid, SIGKILL);
	if (waitpid(pid, NULL, 0) != pid)
		subject_fail("waitpid: %m");
	const char *why = check(fd);
	if (why != NULL)
		subject_fail("before dump: %s", why);
	subject_ready();
	subject_wait_term();
	why = check(fd);
	if (why != NULL)
		subject_fail("%s", why);
	subject_pass();
}
