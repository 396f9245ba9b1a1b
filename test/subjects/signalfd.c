/*
 * signalfd: SIGUSR1 and SIGHUP blocked; 20 signalfd on both, non-blocking;
 * SIGUSR1 raised before the dump, so it is pending at dump time.
 * After SIGTERM: 20 yields SIGUSR1, then a raised SIGHUP, then EAGAIN.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/signalfd.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int fd = signalfd(-1, &sigs, SFD_NONBLOCK);
	if (fd < 0 || dup2(fd, 20) != 20)
		subject_fail("signalfd: errno %d", errno);
	close(fd);
	raise(SIGUSR1);

	subject_ready();
	subject_wait_term();

	struct signalfd_siginfo si;
	if (read(20, &si, sizeof(si)) != sizeof(si) || si.ssi_signo != SIGUSR1)
		subject_fail("pending SIGUSR1 not read (errno %d)", errno);
	raise(SIGHUP);
	if (read(20, &si, sizeof(si)) != sizeof(si) || si.ssi_signo != SIGHUP)
		subject_fail("SIGHUP not read (errno %d)", errno);
	if (read(20, &si, sizeof(si)) != -1 || errno != EAGAIN)
		subject_fail("signalfd not empty or not non-blocking");
	subject_pass();
}
