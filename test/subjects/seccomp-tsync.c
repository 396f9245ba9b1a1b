/*
 * seccomp-tsync: a filter installed as root without no_new_privs (uname()
 * fails with EACCES), then a thread that inherits it. After restore the
 * task must still be without no_new_privs, and a second filter installed
 * with SECCOMP_FILTER_FLAG_TSYNC (getcwd() fails with ENOTTY) must reach
 * the other thread: the kernel refuses TSYNC unless the threads' chains
 * are one, so a restore that gives each thread its own copy fails here.
 */
#include "subject.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static volatile int phase;
static volatile int thread_result = -1;

static void *second(void *arg)
{
	while (phase == 0)
		usleep(1000);
	char buf[64];
	/* The TSYNC filter must have reached this thread. */
	thread_result = syscall(SYS_getcwd, buf, sizeof(buf)) < 0 && errno == ENOTTY ? 0 : 1;
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (subject_seccomp_deny(SYS_uname, EACCES, 0))
		subject_fail("installing the filter as root: %s", strerror(errno));
	pthread_t th = subject_thread(second, NULL);
	subject_ready();
	subject_wait_term();

	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0)
		subject_fail("no_new_privs is set after restore; it was not");
	struct utsname u;
	if (uname(&u) == 0 || errno != EACCES)
		subject_fail("uname() allowed after restore");
	long r = subject_seccomp_deny(SYS_getcwd, ENOTTY, SECCOMP_FILTER_FLAG_TSYNC);
	if (r != 0)
		subject_fail("TSYNC filter refused (%ld, %s): the threads' chains are not one", r, r > 0 ? "by that thread" : strerror(errno));
	phase = 1;
	pthread_join(th, NULL);
	if (thread_result != 0)
		subject_fail("the TSYNC filter did not reach the second thread");
	subject_pass();
}
