/*
 * sleep-nanosleep: blocked in 2 s nanosleeps from right after ready. Every
 * sleep must either run its full length (measured on CLOCK_MONOTONIC) or be
 * cut short by SIGTERM only. A restore that restarts the syscall wrongly
 * (returns early, returns EINTR, or loses the remaining time) fails.
 */
#include "subject.h"

#include <errno.h>
#include <time.h>

#define SLEEP_NS 2000000000LL

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int full = 0;

	subject_ready();
	while (!subject_term) {
		struct timespec ts = { SLEEP_NS / 1000000000LL, SLEEP_NS % 1000000000LL }, rem;
		int64_t t0 = subject_now_ns();
		int r = nanosleep(&ts, &rem);
		int64_t slept = subject_now_ns() - t0;
		if (r == 0) {
			if (slept < SLEEP_NS)
				subject_fail("nanosleep returned 0 after %lld ns of %lld", (long long)slept, SLEEP_NS);
			full++;
		} else if (errno != EINTR || !subject_term) {
			subject_fail("nanosleep: errno %d after %lld ns without SIGTERM", errno, (long long)slept);
		} else if (slept + rem.tv_sec * 1000000000LL + rem.tv_nsec < SLEEP_NS - 20000000LL) {
			/* Elapsed plus remaining must cover the request (small slack for clock granularity). */
			subject_fail("slept %lld ns + remaining %lld.%09ld s < requested", (long long)slept, (long long)rem.tv_sec, rem.tv_nsec);
		}
	}
	subject_log("%d full sleeps", full);
	subject_pass();
}
