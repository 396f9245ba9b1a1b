/*
 * file-lease: leases (dump and restore with --file-locks). fd 20: a read
 * lease (file a, O_RDONLY); fd 21: a write lease (file b, O_WRONLY); fd 22:
 * a read lease on file c that a child is breaking (its O_WRONLY open
 * waits for the lease; we got SIGIO and do not release). After SIGTERM:
 * F_GETLEASE gives read on 20 and write on 21, none on 22 (broken or being
 * broken); once we let go of 22 the child's open goes through (after a
 * restore it already has: the break completed); SIGIO came once.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t sigio;
static void on_io(int sig)
{
	(void)sig;
	sigio++;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	signal(SIGIO, on_io);
	for (const char *f = "abc"; *f; f++) {
		char name[2] = { *f, 0 };
		close(creat(name, 0644));
	}
	subject_at(20, open("a", O_RDONLY), "a");
	subject_at(21, open("b", O_WRONLY), "b");
	subject_at(22, open("c", O_RDONLY), "c");
	if (fcntl(20, F_SETLEASE, F_RDLCK) || fcntl(21, F_SETLEASE, F_WRLCK) || fcntl(22, F_SETLEASE, F_RDLCK))
		subject_fail("F_SETLEASE: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGIO, SIG_DFL);
		int fd = open("c", O_WRONLY); /* waits for the lease to go */
		_exit(fd < 0 ? 1 : 0);
	}
	while (!sigio)
		usleep(1000);
	if (fcntl(22, F_GETLEASE) != F_UNLCK)
		subject_fail("lease on c is not being broken");

	subject_ready();
	subject_wait_term();

	if (fcntl(20, F_GETLEASE) != F_RDLCK)
		subject_fail("read lease on a: %d", fcntl(20, F_GETLEASE));
	if (fcntl(21, F_GETLEASE) != F_WRLCK)
		subject_fail("write lease on b: %d", fcntl(21, F_GETLEASE));
	if (fcntl(22, F_GETLEASE) != F_UNLCK)
		subject_fail("lease on c: %d", fcntl(22, F_GETLEASE));
	/* Let go of what is left of it (nothing after a restore: the break completed). */
	fcntl(22, F_SETLEASE, F_UNLCK);
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		subject_fail("the child's open of c did not go through");
	if (sigio != 1)
		subject_fail("SIGIO came %d times", (int)sigio);
	subject_pass();
}
