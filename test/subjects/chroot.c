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

static const char *enter(void *arg)
{
	if (chroot("jail") != 0 || chdir("/sub") != 0)
		return strerror(errno);
	return NULL;
}

static const char *check(void *arg)
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
	struct subject_child child = subject_fork_prepared("the chrooted child", enter, check, NULL);
	subject_ready();
	subject_wait_term();
	subject_child_verdict(child, "the chrooted child");
	subject_pass();
}
