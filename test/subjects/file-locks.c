/*
 * file-locks: 20 flock.dat under flock(LOCK_EX); 21 shared.dat under
 * flock(LOCK_SH); 22 posix.dat with POSIX locks: write on [100, 200), read
 * on [300, EOF); 24 a second open of posix.dat; 23 ofd.dat with an OFD
 * write lock on [0, 10).
 * After SIGTERM a child sees every lock as held by us: flock conflicts,
 * F_GETLK / F_OFD_GETLK report the ranges, types and owner, and the
 * unlocked range [200, 300) is free.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static void posix(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	if (fcntl(fd, cmd, &fl) != 0)
		subject_fail("lock fd %d [%ld, +%ld): errno %d", fd, (long)start, (long)len, errno);
}

/* In the child: what F_GETLK-style cmd reports for a write request on [start, start+1). */
static int probe(const char *path, int cmd, off_t start, short *type, pid_t *pid)
{
	int fd = open(path, O_RDWR);
	struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 1 };
	int r = fd < 0 ? -1 : fcntl(fd, cmd, &q);
	*type = q.l_type;
	*pid = q.l_pid;
	close(fd);
	return r;
}

static int child_checks(pid_t parent)
{
	int fd = open("flock.dat", O_RDWR);
	if (flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		return 1;
	fd = open("shared.dat", O_RDWR);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 || flock(fd, LOCK_SH | LOCK_NB) != 0)
		return 2;
	short type;
	pid_t pid;
	if (probe("posix.dat", F_GETLK, 150, &type, &pid) || type != F_WRLCK || pid != parent)
		return 3;
	if (probe("posix.dat", F_GETLK, 1000, &type, &pid) || type != F_RDLCK || pid != parent)
		return 4;
	if (probe("posix.dat", F_GETLK, 250, &type, &pid) || type != F_UNLCK)
		return 5;
	if (probe("ofd.dat", F_OFD_GETLK, 5, &type, &pid) || type != F_WRLCK)
		return 6;
	if (probe("ofd.dat", F_OFD_GETLK, 20, &type, &pid) || type != F_UNLCK)
		return 7;
	return 0;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, open("flock.dat", O_RDWR | O_CREAT, 0600), "flock.dat");
	if (flock(20, LOCK_EX) != 0)
		subject_fail("flock EX");
	subject_at(21, open("shared.dat", O_RDWR | O_CREAT, 0600), "shared.dat");
	if (flock(21, LOCK_SH) != 0)
		subject_fail("flock SH");
	subject_at(22, open("posix.dat", O_RDWR | O_CREAT, 0600), "posix.dat");
	/* Before the locks: closing any fd of the file (as subject_at() does) drops our POSIX locks. */
	subject_at(24, open("posix.dat", O_RDONLY), "posix.dat again");
	posix(22, F_SETLK, F_WRLCK, 100, 100);
	posix(22, F_SETLK, F_RDLCK, 300, 0);
	subject_at(23, open("ofd.dat", O_RDWR | O_CREAT, 0600), "ofd.dat");
	posix(23, F_OFD_SETLK, F_WRLCK, 0, 10);

	subject_ready();
	subject_wait_term();

	pid_t me = getpid(), c = fork();
	if (c == 0)
		_exit(child_checks(me));
	int st;
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("lock check %d failed in the child", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	subject_pass();
}
