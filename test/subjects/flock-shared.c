/*
 * flock-shared: 20 shared.dat under flock(LOCK_EX), then a child is forked
 * that keeps the same open file (and so the same lock) and sleeps; the
 * parent holds it too. A flock belongs to the open file, not a task.
 * After SIGTERM (to the parent): another process cannot take the lock;
 * after the child is gone the parent still holds it.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int locked_by_others(void)
{
	pid_t c = fork();
	if (c == 0) {
		int fd = open("shared.dat", O_RDWR);
		_exit(flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK ? 0 : 1);
	}
	int st;
	return waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int fd = open("shared.dat", O_RDWR | O_CREAT, 0600);
	if (fd < 0 || dup2(fd, 20) != 20)
		subject_fail("open");
	close(fd);
	if (flock(20, LOCK_EX) != 0)
		subject_fail("flock");
	pid_t child = subject_idle_child();

	subject_ready();
	subject_wait_term();

	if (!locked_by_others())
		subject_fail("flock not held after restore");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	if (!locked_by_others())
		subject_fail("flock went away with the child");
	subject_pass();
}
