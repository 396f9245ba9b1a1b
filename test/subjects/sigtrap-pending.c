/*
 * sigtrap-pending: a blocked SIGTRAP pending twice, once for the process
 * (kill: the shared queue) and once for the thread (tgkill: its own queue),
 * with a handler installed. A dump refuses it (as CRIU does); afterwards
 * both are still pending in their queues (/proc/self/status ShdPnd and
 * SigPnd), signalfd reads them with their sender, and the handler is
 * still ours (test/dump/sigtrap.test.ts).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

static void on_trap(int sig)
{
	(void)sig;
}

/* The hex mask after `key` in /proc/self/status. */
static unsigned long long status_mask(const char *key)
{
	char line[256];
	unsigned long long m = 0;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		subject_fail("open status: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			sscanf(line + strlen(key), " %llx", &m);
	fclose(f);
	return m;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	struct sigaction sa = { .sa_handler = on_trap };
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTRAP);
	if (sigaction(SIGTRAP, &sa, NULL) || sigprocmask(SIG_BLOCK, &set, NULL))
		subject_fail("setup: %s", strerror(errno));
	int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		subject_fail("signalfd: %s", strerror(errno));
	if (kill(getpid(), SIGTRAP) || syscall(SYS_tgkill, getpid(), gettid(), SIGTRAP))
		subject_fail("send SIGTRAP: %s", strerror(errno));
	const unsigned long long bit = 1ULL << (SIGTRAP - 1);
	if (!(status_mask("ShdPnd:") & bit) || !(status_mask("SigPnd:") & bit))
		subject_fail("SIGTRAP not pending in both queues before ready");

	subject_ready();
	subject_wait_term();

	if (!(status_mask("ShdPnd:") & bit))
		subject_fail("SIGTRAP no longer pending for the process (ShdPnd)");
	if (!(status_mask("SigPnd:") & bit))
		subject_fail("SIGTRAP no longer pending for the thread (SigPnd)");
	for (int i = 0; i < 2; i++) {
		struct signalfd_siginfo si;
		if (read(fd, &si, sizeof(si)) != sizeof(si))
			subject_fail("signalfd read %d: %s", i, strerror(errno));
		if (si.ssi_signo != SIGTRAP || si.ssi_pid != (uint32_t)getpid())
			subject_fail("signalfd read %d: signal %u from %u", i, si.ssi_signo, si.ssi_pid);
	}
	struct sigaction now;
	if (sigaction(SIGTRAP, NULL, &now) || now.sa_handler != on_trap)
		subject_fail("the SIGTRAP handler was reset");
	subject_pass();
}
