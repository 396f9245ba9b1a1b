/*
 * itimer: ITIMER_REAL every 50 ms, SIGALRMs counted. After SIGTERM the timer
 * must still be armed with the same interval (a restore that drops or
 * rescales it fails here) and the count must keep growing.
 * Built as itimer-expired (ITIMER_EXPIRED defined), SIGALRM is blocked until SIGTERM, so at the dump the timer
 * has expired and waits, value 0, for its pending signal to be taken (the
 * kernel re-arms it then): interval, pending signal and ticking must survive.
 * Built as itimer-fast (INTERVAL_US 1000), the timer fires during the dump's
 * injected calls: their stops take several SIGALRMs, which must come back as
 * one pending signal (a queue holds one), as --verify checks.
 */
#include "subject.h"

#include <string.h>
#include <sys/time.h>

#ifndef INTERVAL_US
#define INTERVAL_US 50000
#endif

static volatile int alarms;

static void on_alrm(int sig)
{
	alarms++;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, INTERVAL_US }, { 0, INTERVAL_US } };
	if (setitimer(ITIMER_REAL, &it, NULL) != 0)
		subject_fail("setitimer");

#ifdef ITIMER_EXPIRED
	const int expired = 1;
#else
	const int expired = 0;
#endif
	sigset_t alrm;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	if (expired) {
		sigprocmask(SIG_BLOCK, &alrm, NULL);
		while (alarms == 0) {
			struct itimerval now;
			getitimer(ITIMER_REAL, &now);
			if (now.it_value.tv_sec == 0 && now.it_value.tv_usec == 0)
				break; /* expired, SIGALRM pending */
		}
	}

	subject_ready();
	subject_wait_term();
	if (expired) {
		sigset_t pending;
		sigpending(&pending);
		if (!sigismember(&pending, SIGALRM))
			subject_fail("the pending SIGALRM was lost");
		sigprocmask(SIG_UNBLOCK, &alrm, NULL); /* taken now: the kernel re-arms the timer */
	}

	struct itimerval cur;
	getitimer(ITIMER_REAL, &cur);
	if (cur.it_interval.tv_sec != 0 || cur.it_interval.tv_usec != INTERVAL_US)
		subject_fail("interval now %ld.%06ld", (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec);
	if (cur.it_value.tv_sec != 0 || cur.it_value.tv_usec <= 0 || cur.it_value.tv_usec > INTERVAL_US)
		subject_fail("value now %ld.%06ld", (long)cur.it_value.tv_sec, (long)cur.it_value.tv_usec);
	/* Three more ticks within a second, waiting with the signal unblocked. */
	int start = alarms;
	int64_t deadline = subject_now_ns() + 1000000000LL;
	sigset_t none;
	sigemptyset(&none);
	while (alarms < start + 3 && subject_now_ns() < deadline)
		sigsuspend(&none);
	if (alarms < start + 3)
		subject_fail("timer stopped ticking: %d alarms in 1 s", alarms - start);
	subject_pass();
}
