/*
 * fdt-shared: two processes sharing one fd table (clone with CLONE_FILES,
 * without CLONE_VM). After SIGTERM the parent opens a pipe at fd 40 and
 * tells the child (SIGTERM): the child writes through fd 40 and closes
 * fd 41 (a file the parent opened before the checkpoint); the parent reads
 * the byte and finds fd 41 gone: the table is still one.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[256 * 1024] __attribute__((aligned(16)));

static int child(void *arg)
{
	(void)arg;
	subject_term = 0;
	subject_wait_term();
	if (write(40, "x", 1) != 1)
		_exit(2);
	if (close(41) != 0)
		_exit(3);
	_exit(0);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(41, open("/dev/null", O_RDONLY), "/dev/null");
	pid_t pid = clone(child, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL);
	if (pid < 0)
		subject_fail("clone: %s", strerror(errno));

	subject_ready();
	subject_wait_term();

	int p[2];
	if (pipe(p))
		subject_fail("pipe");
	subject_at(40, p[1], "pipe write end");
	if (kill(pid, SIGTERM))
		subject_fail("kill child");
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		subject_fail("child: fd 40 missing or fd 41 not closable (status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	char c;
	if (read(p[0], &c, 1) != 1 || c != 'x')
		subject_fail("no byte from the child");
	if (fcntl(41, F_GETFD) != -1 || errno != EBADF)
		subject_fail("fd 41 closed by the child is still open here");
	subject_pass();
}
