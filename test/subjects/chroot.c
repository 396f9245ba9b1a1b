/*
 * chroot: a child chroots into a directory of the work dir and works in a
 * subdirectory of it (the parent, outside the jail, reports). After
 * restore the child's root and cwd are the same: getcwd says /sub, and a
 * marker file is found at /marker and at ../marker.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *check(void)
{
	static char why[512];
	char cwd[256];
	if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/sub") != 0) {
		snprintf(why, sizeof(why), "cwd is %s, not /sub", getcwd(cwd, sizeof(cwd)) ? cwd : strerror(errno));
		return why;
	}
	if (access("/marker", F_OK) != 0 || access("../marker", F_OK) != 0)
		return "marker not found at /marker and ../marker";
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (mkdir("jail", 0755) != 0 || mkdir("jail/sub", 0755) != 0)
		subject_fail("mkdir: %m");
	int m = open("jail/marker", O_CREAT | O_WRONLY, 0644);
	if (m < 0 || write(m, "x", 1) != 1)
		subject_fail("marker: %m");
	close(m);
	int ready[2], verdict[2];
	if (pipe(ready) != 0 || pipe(verdict) != 0)
		subject_fail("pipe: %m");
	pid_t pid = fork();
	if (pid < 0)
		subject_fail("fork: %m");
	if (pid == 0) {
		close(ready[0]);
		close(verdict[0]);
		subject_term = 0;
		if (chroot("jail") != 0 || chdir("/sub") != 0)
			_exit(3);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		subject_wait_term();
		const char *why = check();
		if (why != NULL && write(verdict[1], why, strlen(why)) < 0)
			_exit(2);
		_exit(why == NULL ? 0 : 1);
	}
	close(ready[1]);
	close(verdict[1]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		subject_fail("the child could not chroot");
	subject_ready();
	subject_wait_term();

	kill(pid, SIGTERM);
	char why[512] = "";
	ssize_t n = read(verdict[0], why, sizeof(why) - 1);
	why[n > 0 ? n : 0] = 0;
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		subject_fail("chrooted child: %s (status 0x%x)", why[0] ? why : "no reason", status);
	subject_pass();
}
