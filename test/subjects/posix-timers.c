/*
 * posix-timers: POSIX timers of several kinds that a restore must recreate
 * with the same ids, clocks, notifications and intervals:
 *   t_rt    CLOCK_REALTIME,  SIGEV_SIGNAL SIGRTMIN+1, value 0x1001, every 20 ms
 *   t_gap   created then deleted, so the ids have a hole
 *   t_mono  CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+2, value 0x1002, every 30 ms
 *   t_none  CLOCK_MONOTONIC, SIGEV_NONE, 1000 s first expiry, 7 s interval
 *   t_tid   CLOCK_MONOTONIC, SIGEV_THREAD_ID to a helper thread, SIGRTMIN+3,
 *           value 0x1003, every 25 ms
 * Handlers count signals and check si_value, si_timerid and (for t_tid)
 * the receiving thread. At check time: the periodic timers must still fire
 * (counts grow over 400 ms), timer_gettime intervals are unchanged, the
 * deleted id is still invalid, /proc/self/timers lists exactly our ids.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

enum { T_RT, T_MONO, T_TID, NSIG_TIMERS };
static timer_t t_rt, t_gap, t_mono, t_none, t_tid;
static volatile int count[NSIG_TIMERS];
static volatile int bad[NSIG_TIMERS]; /* first wrong siginfo seen, as a code */
static volatile pid_t helper_tid;
static volatile int helper_stop;

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	int k = sig - SIGRTMIN - 1;
	if (k < 0 || k >= NSIG_TIMERS)
		return;
	timer_t want = k == T_RT ? t_rt : k == T_MONO ? t_mono : t_tid;
	count[k]++;
	if (si->si_code != SI_TIMER)
		bad[k] = bad[k] ? bad[k] : 1;
	else if (si->si_value.sival_int != 0x1001 + k)
		bad[k] = bad[k] ? bad[k] : 2;
	else if (si->si_timerid != (int)(long)want)
		bad[k] = bad[k] ? bad[k] : 3;
	else if (k == T_TID && gettid() != helper_tid)
		bad[k] = bad[k] ? bad[k] : 4;
}

static void *helper(void *arg)
{
	(void)arg;
	/* Only this thread takes SIGRTMIN+3; the others go to the main thread. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 1);
	sigaddset(&set, SIGRTMIN + 2);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	helper_tid = gettid();
	struct timespec ts = { 0, 10000000 };
	while (!helper_stop)
		nanosleep(&ts, NULL);
	return NULL;
}

static void make(timer_t *t, clockid_t clk, int notify, int sig, int value, pid_t tid)
{
	struct sigevent ev;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = notify;
	ev.sigev_signo = sig;
	ev.sigev_value.sival_int = value;
	if (notify == SIGEV_THREAD_ID)
		ev.sigev_notify_thread_id = tid;
	if (timer_create(clk, &ev, t) != 0)
		subject_fail("timer_create: %s", strerror(errno));
}

static void arm(timer_t t, long first_ms, long every_ms)
{
	struct itimerspec its = {
		.it_value = { first_ms / 1000, (first_ms % 1000) * 1000000 },
		.it_interval = { every_ms / 1000, (every_ms % 1000) * 1000000 },
	};
	if (timer_settime(t, 0, &its, NULL) != 0)
		subject_fail("timer_settime: %s", strerror(errno));
}

static void check_interval(timer_t t, const char *name, long every_ms, long max_value_ms)
{
	struct itimerspec its;
	if (timer_gettime(t, &its) != 0)
		subject_fail("timer_gettime %s (id %ld): %s", name, (long)t, strerror(errno));
	long iv = its.it_interval.tv_sec * 1000 + its.it_interval.tv_nsec / 1000000;
	if (iv != every_ms || its.it_interval.tv_nsec % 1000000 != 0)
		subject_fail("%s interval %ld.%09ld s, want %ld ms", name, (long)its.it_interval.tv_sec,
			     its.it_interval.tv_nsec, every_ms);
	long v = its.it_value.tv_sec * 1000 + its.it_value.tv_nsec / 1000000;
	if ((its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) || v > max_value_ms)
		subject_fail("%s next expiry in %ld ms (disarmed or later than %ld ms)", name, v, max_value_ms);
}

/* Ids listed in /proc/self/timers, "ID: N" lines. */
static int proc_timer_ids(long *ids, int max)
{
	FILE *f = fopen("/proc/self/timers", "re");
	char line[256];
	int n = 0;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "ID: ", 4) == 0 && n < max)
			ids[n++] = strtol(line + 4, NULL, 10);
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	for (int k = 1; k <= 3; k++)
		subject_on_signal(SIGRTMIN + k, on_timer, 0);

	/* The main thread takes SIGRTMIN+1/2 and SIGTERM, never SIGRTMIN+3. */
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + 3);
	sigaddset(&m, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	pthread_t th;
	if (pthread_create(&th, NULL, helper, NULL) != 0)
		subject_fail("pthread_create");
	sigdelset(&m, SIGTERM);
	pthread_sigmask(SIG_SETMASK, &m, NULL);
	while (!helper_tid)
		subject_sleep_ms(1);

	make(&t_rt, CLOCK_REALTIME, SIGEV_SIGNAL, SIGRTMIN + 1, 0x1001, 0);
	make(&t_gap, CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
	make(&t_mono, CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 2, 0x1002, 0);
	make(&t_none, CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0);
	make(&t_tid, CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 3, 0x1003, helper_tid);
	if (timer_delete(t_gap) != 0)
		subject_fail("timer_delete: %s", strerror(errno));
	arm(t_rt, 20, 20);
	arm(t_mono, 30, 30);
	arm(t_none, 1000000, 7000);
	arm(t_tid, 25, 25);
	subject_log("timer ids: rt %ld, deleted %ld, mono %ld, none %ld, tid %ld (thread %d)", (long)t_rt, (long)t_gap,
		    (long)t_mono, (long)t_none, (long)t_tid, helper_tid);
	subject_sleep_ms(100);

	subject_ready();
	subject_wait_term();

	int before[NSIG_TIMERS];
	for (int k = 0; k < NSIG_TIMERS; k++)
		before[k] = count[k];
	subject_sleep_ms(400);
	static const char *const names[NSIG_TIMERS] = { "realtime/SIGRTMIN+1", "monotonic/SIGRTMIN+2", "thread-id/SIGRTMIN+3" };
	static const int min_ticks[NSIG_TIMERS] = { 5, 4, 4 }; /* about a quarter of the expected 20, 13, 16 */
	for (int k = 0; k < NSIG_TIMERS; k++) {
		if (bad[k])
			subject_fail("%s: wrong siginfo (%s)", names[k],
				     bad[k] == 1 ? "si_code" : bad[k] == 2 ? "si_value" : bad[k] == 3 ? "si_timerid" : "thread");
		if (count[k] - before[k] < min_ticks[k])
			subject_fail("%s fired %d times in 400 ms after the check began", names[k], count[k] - before[k]);
	}
	check_interval(t_rt, "t_rt", 20, 20);
	check_interval(t_mono, "t_mono", 30, 30);
	check_interval(t_tid, "t_tid", 25, 25);
	check_interval(t_none, "t_none", 7000, 1000000);
	struct itimerspec its;
	if (timer_gettime(t_gap, &its) == 0 || errno != EINVAL)
		subject_fail("deleted timer id %ld exists again", (long)t_gap);

	long ids[16], want[] = { (long)t_rt, (long)t_mono, (long)t_none, (long)t_tid };
	int n = proc_timer_ids(ids, 16);
	if (n != 4)
		subject_fail("/proc/self/timers lists %d timers, want 4", n);
	for (int i = 0; i < 4; i++) {
		int found = 0;
		for (int j = 0; j < n; j++)
			found |= ids[j] == want[i];
		if (!found)
			subject_fail("timer id %ld missing from /proc/self/timers", want[i]);
	}
	helper_stop = 1;
	pthread_join(th, NULL);
	subject_pass();
}
