/*
 * fown: file owners (F_SETOWN_EX/F_SETSIG) and O_ASYNC. A pipe's read end
 * is owned by the process with SIGUSR1; a socketpair end is owned by the
 * main thread (F_OWNER_TID), set while the task's uid/euid were 4321 (the
 * kernel records them with the owner and checks them before it signals).
 * After restore F_GETOWN_EX, F_GETSIG and F_GETOWNER_UIDS read the same,
 * and a write into the pipe still sends SIGUSR1 carrying the fd.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef F_GETOWNER_UIDS
#define F_GETOWNER_UIDS 17
#endif

static volatile int got_fd = -1, got_sig;

static void on_io(int sig, siginfo_t *si, void *uc)
{
	got_sig = sig;
	got_fd = si->si_fd;
}

struct owner {
	struct f_owner_ex ex;
	int sig;
	unsigned int uids[2];
};

static void read_owner(int fd, struct owner *o)
{
	memset(o, 0, sizeof(*o));
	if (fcntl(fd, F_GETOWN_EX, &o->ex) != 0 || fcntl(fd, F_GETOWNER_UIDS, o->uids) != 0)
		subject_fail("fcntl(%d): %m", fd);
	o->sig = fcntl(fd, F_GETSIG);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_on_signal(SIGUSR1, on_io, 0);
	signal(SIGIO, SIG_IGN);
	int p[2], sk[2];
	if (pipe(p) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sk) != 0)
		subject_fail("pipe/socketpair: %m");
	struct f_owner_ex tid = { F_OWNER_TID, gettid() };
	if (setresuid(4321, 4321, 0) != 0)
		subject_fail("setresuid: %m");
	if (fcntl(sk[0], F_SETOWN_EX, &tid) != 0)
		subject_fail("F_SETOWN_EX socket: %m");
	if (setresuid(0, 0, 0) != 0)
		subject_fail("setresuid back: %m");
	struct f_owner_ex proc = { F_OWNER_PID, getpid() };
	if (fcntl(p[0], F_SETOWN_EX, &proc) != 0 || fcntl(p[0], F_SETSIG, SIGUSR1) != 0 ||
	    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC | O_NONBLOCK) != 0)
		subject_fail("fcntl: %m");
	struct owner before[2], after[2];
	read_owner(p[0], &before[0]);
	read_owner(sk[0], &before[1]);
	subject_ready();
	subject_wait_term();

	read_owner(p[0], &after[0]);
	read_owner(sk[0], &after[1]);
	for (int i = 0; i < 2; i++)
		if (memcmp(&before[i], &after[i], sizeof(before[i])) != 0)
			subject_fail("%s owner: type %d pid %d sig %d uids %u/%u, was type %d pid %d sig %d uids %u/%u",
				     i ? "socket" : "pipe", after[i].ex.type, after[i].ex.pid, after[i].sig, after[i].uids[0],
				     after[i].uids[1], before[i].ex.type, before[i].ex.pid, before[i].sig, before[i].uids[0],
				     before[i].uids[1]);
	if (!(fcntl(p[0], F_GETFL) & O_ASYNC))
		subject_fail("O_ASYNC lost");
	if (write(p[1], "x", 1) != 1)
		subject_fail("write: %m");
	for (int i = 0; i < 1000 && got_sig == 0; i++)
		usleep(1000);
	if (got_sig != SIGUSR1 || got_fd != p[0])
		subject_fail("SIGIO: got signal %d for fd %d (want %d for %d)", got_sig, got_fd, SIGUSR1, p[0]);
	subject_pass();
}
