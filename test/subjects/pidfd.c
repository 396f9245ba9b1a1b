/*
 * pidfd: 20 a pidfd of ourselves (PIDFD_NONBLOCK); 21 a pidfd of a child
 * that sleeps (made before 20, so the child exists first at restore too).
 * After SIGTERM: 20 still names us (fdinfo Pid) and is non-blocking; 21
 * names the child, signals it through pidfd_send_signal and reports its
 * exit by poll and waitid(P_PIDFD).
 * 23 and 24: two pidfds of one child that exited and was reaped, 25 one of
 * another: after SIGTERM they name no process (Pid -1), 23 and 24 share an
 * inode and 25 has its own.
 * With --outside 1 (a dump must refuse it): 22 a pidfd of our parent,
 * which is not part of the dump.
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int fdinfo_pid(int fd)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	int pid = 0;
	while (f && fgets(buf, sizeof(buf), f))
		if (strncmp(buf, "Pid:", 4) == 0)
			pid = atoi(buf + 4);
	if (f)
		fclose(f);
	return pid;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	pid_t child = subject_idle_child();
	subject_at(21, (int)syscall(SYS_pidfd_open, child, 0), "pidfd child");
	subject_at(20, (int)syscall(SYS_pidfd_open, getpid(), O_NONBLOCK), "pidfd self");
	pid_t gone[2];
	for (int i = 0; i < 2; i++) {
		gone[i] = fork();
		if (gone[i] == 0)
			_exit(0);
	}
	subject_at(23, (int)syscall(SYS_pidfd_open, gone[0], 0), "pidfd gone 0");
	subject_at(24, (int)syscall(SYS_pidfd_open, gone[0], 0), "pidfd gone 0 again");
	subject_at(25, (int)syscall(SYS_pidfd_open, gone[1], 0), "pidfd gone 1");
	for (int i = 0; i < 2; i++)
		while (waitpid(gone[i], NULL, 0) < 0 && errno == EINTR)
			;
	if (subject_opt_long("outside", 0))
		subject_at(22, (int)syscall(SYS_pidfd_open, getppid(), 0), "pidfd parent");

	subject_ready();
	subject_wait_term();

	if (fdinfo_pid(20) != getpid() || !(fcntl(20, F_GETFL) & O_NONBLOCK))
		subject_fail("pidfd of ourselves: Pid %d", fdinfo_pid(20));
	if (fdinfo_pid(21) != child)
		subject_fail("pidfd of the child names %d, not %d", fdinfo_pid(21), child);
	if (syscall(SYS_pidfd_send_signal, 21, SIGKILL, NULL, 0) != 0)
		subject_fail("pidfd_send_signal: errno %d", errno);
	struct pollfd pf = { .fd = 21, .events = POLLIN };
	if (poll(&pf, 1, 5000) != 1)
		subject_fail("child exit not reported by poll");
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, 21, &si, WEXITED) != 0 || si.si_pid != child || si.si_code != CLD_KILLED)
		subject_fail("waitid(P_PIDFD): errno %d", errno);
	struct stat a, b, c;
	if (fstat(23, &a) || fstat(24, &b) || fstat(25, &c))
		subject_fail("fstat dead pidfds");
	if (a.st_ino != b.st_ino || a.st_ino == c.st_ino)
		subject_fail("dead pidfds: inodes %lu %lu %lu", (unsigned long)a.st_ino, (unsigned long)b.st_ino, (unsigned long)c.st_ino);
	if (fdinfo_pid(23) != -1 || fdinfo_pid(25) != -1)
		subject_fail("dead pidfds name processes %d, %d", fdinfo_pid(23), fdinfo_pid(25));
	subject_pass();
}
