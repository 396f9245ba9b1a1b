/*
 * A task in a time namespace of its own: started as a plain process, the
 * subject unshares CLONE_NEWTIME, moves CLOCK_MONOTONIC 10 days and
 * CLOCK_BOOTTIME 20 days ahead (/proc/self/timens_offsets, like `unshare
 * --time --monotonic ... --boottime ...`) and forks; the child, born in
 * that namespace, is the subject (the harness reads its pid from
 * OUTFILE.ready). It notes both clocks when ready and checks after the
 * restore that each went on from there (a restore into our namespace would
 * set them back by the offsets), and that a child it forks shares its
 * namespace. --nested 1 adds a child that unshares another time namespace
 * and forks into it (refused at dump).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x80
#endif

static int64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void launch(void)
{
	if (unshare(CLONE_NEWTIME) != 0)
		subject_fail("unshare(CLONE_NEWTIME): %s", strerror(errno));
	int fd = open("/proc/self/timens_offsets", O_WRONLY);
	const char *offs = "monotonic 864000 0\nboottime 1728000 0\n";
	if (fd < 0 || write(fd, offs, strlen(offs)) != (ssize_t)strlen(offs))
		subject_fail("timens_offsets: %s", strerror(errno));
	close(fd);
	pid_t child = fork();
	if (child < 0)
		subject_fail("fork: %s", strerror(errno));
	if (child == 0) {
		setsid();
		return;
	}
	signal(SIGTERM, SIG_IGN);
	int st;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	launch();
	const int64_t day = 86400LL * 1000000000LL;
	int64_t mono0 = clock_ns(CLOCK_MONOTONIC), boot0 = clock_ns(CLOCK_BOOTTIME);
	if (mono0 < 10 * day || boot0 < 20 * day)
		subject_fail("the offsets are not in effect: monotonic %lld, boottime %lld", (long long)mono0, (long long)boot0);
	if (subject_opt_long("nested", 0)) {
		pid_t n = fork();
		if (n == 0) {
			/* Both die with their parent: nothing is left once the subject exits. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1 || unshare(CLONE_NEWTIME) != 0)
				_exit(3);
			pid_t g = fork();
			if (g == 0)
				prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		usleep(50000);
	}
	subject_ready();
	subject_wait_term();
	int64_t mono = clock_ns(CLOCK_MONOTONIC), boot = clock_ns(CLOCK_BOOTTIME);
	/* From where they were, forward, by less than the test can take. */
	if (mono < mono0 || mono - mono0 > 600LL * 1000000000LL)
		subject_fail("CLOCK_MONOTONIC went from %lld to %lld", (long long)mono0, (long long)mono);
	if (boot < boot0 || boot - boot0 > 600LL * 1000000000LL)
		subject_fail("CLOCK_BOOTTIME went from %lld to %lld", (long long)boot0, (long long)boot);
	pid_t c = fork();
	if (c == 0) {
		int64_t m = clock_ns(CLOCK_MONOTONIC);
		_exit(m >= mono ? 0 : 1);
	}
	int st;
	waitpid(c, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("a child forked after the restore sees another monotonic clock");
	subject_pass();
}
