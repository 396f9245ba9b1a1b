/*
 * task-attrs: attributes of a task and of each of its threads that a
 * restore must put back: personality, the login uid (only the task itself
 * may write it), membarrier() registration, dumpable, child subreaper,
 * THP disabled; per thread: scheduling policy (with SCHED_RESET_ON_FORK),
 * real-time priority, nice, the parent-death signal (one thread runs as
 * another uid: a change of ids clears it) and the timer slack. Three threads hold
 * different values. After SIGTERM each thread reads its own values again
 * and they must be as before. A value the sandbox does not let us set
 * (real-time policy, login uid) is logged and left out of the check.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

struct thread_attrs {
	int policy, prio, nice, pdeath;
	long slack;
};

struct worker {
	pthread_t th;
	int policy, prio, nice, pdeath; /* what to set */
	long slack;
	int uid; /* this thread alone changes uid first (which clears pdeathsig) */
	int tid;
	struct thread_attrs before, after;
	volatile int ready;
};

static volatile int done;

static void read_attrs(struct thread_attrs *a)
{
	struct sched_param sp;
	int tid = (int)syscall(SYS_gettid);
	a->policy = sched_getscheduler(tid);
	sched_getparam(tid, &sp);
	a->prio = sp.sched_priority;
	errno = 0;
	a->nice = getpriority(PRIO_PROCESS, tid);
	prctl(PR_GET_PDEATHSIG, &a->pdeath);
	a->slack = prctl(PR_GET_TIMERSLACK);
}

static void set_attrs(struct worker *w)
{
	int tid = (int)syscall(SYS_gettid);
	struct sched_param sp = { .sched_priority = w->prio };
	if (setpriority(PRIO_PROCESS, tid, w->nice))
		subject_fail("setpriority(%d)", w->nice);
	if (sched_setscheduler(tid, w->policy, &sp))
		subject_log("sched_setscheduler(0x%x, %d): %m; keeping the default policy", w->policy, w->prio);
	if (w->uid && syscall(SYS_setresuid, w->uid, w->uid, w->uid))
		subject_fail("setresuid(%d) in one thread", w->uid);
	if (prctl(PR_SET_PDEATHSIG, w->pdeath))
		subject_fail("PR_SET_PDEATHSIG");
	if (w->slack && prctl(PR_SET_TIMERSLACK, w->slack))
		subject_fail("PR_SET_TIMERSLACK");
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->tid = (int)syscall(SYS_gettid);
	set_attrs(w);
	read_attrs(&w->before);
	w->ready = 1;
	while (!done)
		usleep(1000);
	read_attrs(&w->after);
	return NULL;
}

static int same(const char *who, const struct thread_attrs *b, const struct thread_attrs *a)
{
	if (b->policy == a->policy && b->prio == a->prio && b->nice == a->nice && b->pdeath == a->pdeath && b->slack == a->slack)
		return 1;
	subject_log("%s: policy 0x%x prio %d nice %d pdeathsig %d slack %ld, were 0x%x %d %d %d %ld", who, a->policy, a->prio,
		    a->nice, a->pdeath, a->slack, b->policy, b->prio, b->nice, b->pdeath, b->slack);
	return 0;
}

static long loginuid(void)
{
	char buf[32] = "";
	int fd = open("/proc/self/loginuid", O_RDONLY);
	if (fd < 0)
		return -2;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -2;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int pers = PER_LINUX | ADDR_NO_RANDOMIZE | UNAME26;
	if (personality(pers) < 0)
		subject_fail("personality");
	/* The login uid: a value nobody else uses here; auditing may be off or the uid immutable. */
	int lfd = open("/proc/self/loginuid", O_WRONLY);
	if (lfd < 0 || write(lfd, "4242", 4) != 4)
		subject_log("cannot set loginuid: %m; not checked");
	if (lfd >= 0)
		close(lfd);
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0))
		subject_fail("membarrier(REGISTER_PRIVATE_EXPEDITED)");
	int membarrier_before = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
	if (prctl(PR_SET_DUMPABLE, 0) || prctl(PR_SET_CHILD_SUBREAPER, 1) || prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		subject_fail("prctl(DUMPABLE/CHILD_SUBREAPER/THP_DISABLE)");

	struct worker workers[3] = {
		{ .policy = SCHED_BATCH, .prio = 0, .nice = 5, .pdeath = SIGWINCH, .slack = 777 },
		{ .policy = SCHED_IDLE | SCHED_RESET_ON_FORK, .prio = 0, .nice = 9, .pdeath = SIGURG },
		{ .policy = SCHED_RR, .prio = 3, .nice = 2, .pdeath = SIGPWR, .uid = 1000 },
	};
	struct worker self = { .policy = SCHED_OTHER, .prio = 0, .nice = 3, .pdeath = SIGCONT, .slack = 123456 };
	for (int i = 0; i < 3; i++)
		workers[i].th = subject_thread(worker_main, &workers[i]);
	set_attrs(&self);
	read_attrs(&self.before);
	for (int i = 0; i < 3; i++)
		while (!workers[i].ready)
			usleep(1000);
	long luid = loginuid();

	subject_ready();
	subject_wait_term();
	read_attrs(&self.after);
	done = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(workers[i].th, NULL);

	int ok = same("main thread", &self.before, &self.after);
	for (int i = 0; i < 3; i++) {
		char who[32];
		snprintf(who, sizeof(who), "thread %d", i + 1);
		ok &= same(who, &workers[i].before, &workers[i].after);
	}
	if (!ok)
		subject_fail("thread attributes changed (see log)");
	if (personality(0xffffffff) != pers)
		subject_fail("personality 0x%x, was 0x%x", personality(0xffffffff), pers);
	if (loginuid() != luid)
		subject_fail("loginuid %ld, was %ld", loginuid(), luid);
	int mb = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0);
	if (mb != membarrier_before)
		subject_fail("membarrier registrations 0x%x, were 0x%x", mb, membarrier_before);
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
		subject_fail("MEMBARRIER_CMD_PRIVATE_EXPEDITED: %m (registration lost)");
	int sub = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &sub);
	if (prctl(PR_GET_DUMPABLE) != 0 || sub != 1 || prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1)
		subject_fail("dumpable %d, child subreaper %d, THP disabled %d (want 0, 1, 1)", prctl(PR_GET_DUMPABLE), sub,
			     prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
	subject_pass();
}
