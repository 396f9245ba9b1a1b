/*
 * timerfd: 20 MONOTONIC, 100 s then every 1.5 s; 21 MONOTONIC one-shot that
 * fired once before the dump (1 tick pending, disarmed); 22 REALTIME
 * absolute at now + 100 s, non-blocking; 23 MONOTONIC every 20 ms.
 * After SIGTERM: 20 keeps its interval and has 1..100 s left; 21 reads 1
 * tick; 22 has 1..100 s left and is non-blocking; 23 keeps ticking (it had
 * expired with a tick unread at dump, which fdinfo shows as 0 s left).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void set(int fd, int flags, time_t vs, long vns, time_t is, long ins)
{
	struct itimerspec its = { { is, ins }, { vs, vns } };
	if (timerfd_settime(fd, flags, &its, NULL) != 0)
		subject_fail("timerfd_settime %d: errno %d", fd, errno);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, timerfd_create(CLOCK_MONOTONIC, 0), "timerfd 20");
	set(20, 0, 100, 0, 1, 500000000);
	subject_at(21, timerfd_create(CLOCK_MONOTONIC, 0), "timerfd 21");
	set(21, 0, 0, 1000000, 0, 0);
	subject_at(22, timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK), "timerfd 22");
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	set(22, TFD_TIMER_ABSTIME, now.tv_sec + 100, now.tv_nsec, 0, 0);
	subject_at(23, timerfd_create(CLOCK_MONOTONIC, 0), "timerfd 23");
	set(23, 0, 0, 20000000, 0, 20000000);
	usleep(20000); /* let 21 fire */

	subject_ready();
	subject_wait_term();

	struct itimerspec cur;
	if (timerfd_gettime(20, &cur) != 0 || cur.it_interval.tv_sec != 1 || cur.it_interval.tv_nsec != 500000000 ||
	    cur.it_value.tv_sec < 1 || cur.it_value.tv_sec > 100)
		subject_fail("timerfd 20 settings changed: value %ld interval %ld.%09ld", (long)cur.it_value.tv_sec,
			     (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
	uint64_t ticks = 0;
	if (read(21, &ticks, 8) != 8 || ticks != 1)
		subject_fail("timerfd 21: %llu ticks (errno %d)", (unsigned long long)ticks, errno);
	if (timerfd_gettime(22, &cur) != 0 || cur.it_value.tv_sec < 1 || cur.it_value.tv_sec > 100)
		subject_fail("timerfd 22 left %ld s", (long)cur.it_value.tv_sec);
	if (read(22, &ticks, 8) != -1 || errno != EAGAIN)
		subject_fail("timerfd 22 not non-blocking or fired early");
	if (read(23, &ticks, 8) != 8 || ticks < 1)
		subject_fail("timerfd 23 stopped");
	struct pollfd pf = { .fd = 23, .events = POLLIN };
	if (poll(&pf, 1, 1000) != 1 || read(23, &ticks, 8) != 8 || ticks < 1)
		subject_fail("timerfd 23 did not tick again after a read");
	subject_pass();
}
