/*
 * creds-caps: credentials a restore must put back exactly, per thread.
 * The main thread trims its bounding set, lowers its permitted and
 * effective sets, sets inheritable capabilities and raises one ambient
 * capability, sets securebits (NOROOT and NO_CAP_AMBIENT_RAISE, the
 * latter forbids raising ambient capabilities once set, so the order of a
 * restore matters) and no_new_privs. A second thread lowers its own sets
 * differently (capabilities are per thread). After SIGTERM every Cap*
 * line, NoNewPrivs and the securebits of both threads must be as before.
 */
#include "subject.h"

#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SECBIT_NOROOT_BIT (1 << 0)
#define SECBIT_NO_CAP_AMBIENT_RAISE_BIT (1 << 6)

struct snapshot {
	char caps[512];
	int secbits;
};

static volatile int done;
static struct snapshot thread_before, thread_after;

/* Cap* and NoNewPrivs lines of one thread's status, plus its securebits (asked by the thread itself). */
static void snap(struct snapshot *s)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", (long)syscall(SYS_gettid));
	FILE *f = fopen(path, "r");
	if (!f)
		subject_fail("open %s", path);
	s->caps[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10))
			strncat(s->caps, line, sizeof(s->caps) - strlen(s->caps) - 1);
	fclose(f);
	s->secbits = prctl(PR_GET_SECUREBITS);
}

static int get_caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	return syscall(SYS_capget, &h, d);
}

static int set_caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	return syscall(SYS_capset, &h, d);
}

static void *second(void *arg)
{
	struct __user_cap_data_struct d[2];
	if (get_caps(d))
		subject_fail("capget");
	/* This thread alone gives up CAP_KILL (effective) and CAP_SYS_NICE (permitted). */
	d[0].effective &= ~(1u << CAP_KILL);
	d[0].permitted &= ~(1u << CAP_SYS_NICE);
	d[0].effective &= ~(1u << CAP_SYS_NICE);
	if (set_caps(d))
		subject_fail("capset in the second thread");
	snap(&thread_before);
	while (!done)
		usleep(1000);
	snap(&thread_after);
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	struct __user_cap_data_struct d[2];
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT) || prctl(PR_CAPBSET_DROP, CAP_MKNOD))
		subject_fail("PR_CAPBSET_DROP");
	if (get_caps(d))
		subject_fail("capget");
	d[0].permitted &= ~(1u << CAP_SYS_TIME);
	d[0].effective &= ~((1u << CAP_SYS_TIME) | (1u << CAP_DAC_READ_SEARCH));
	d[0].inheritable = (1u << CAP_NET_BIND_SERVICE) | (1u << CAP_CHOWN);
	if (set_caps(d))
		subject_fail("capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0))
		subject_fail("PR_CAP_AMBIENT_RAISE");
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT_BIT | SECBIT_NO_CAP_AMBIENT_RAISE_BIT))
		subject_fail("PR_SET_SECUREBITS");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		subject_fail("PR_SET_NO_NEW_PRIVS");

	pthread_t th = subject_thread(second, NULL);
	while (thread_before.caps[0] == 0)
		usleep(1000);

	struct snapshot before, after;
	snap(&before);
	subject_ready();
	subject_wait_term();
	snap(&after);
	done = 1;
	pthread_join(th, NULL);
	if (strcmp(before.caps, after.caps))
		subject_fail("main thread: before\n%safter\n%s", before.caps, after.caps);
	if (before.secbits != after.secbits)
		subject_fail("securebits 0x%x, were 0x%x", after.secbits, before.secbits);
	if (strcmp(thread_before.caps, thread_after.caps))
		subject_fail("second thread: before\n%safter\n%s", thread_before.caps, thread_after.caps);
	if (thread_before.secbits != thread_after.secbits)
		subject_fail("second thread securebits 0x%x, were 0x%x", thread_after.secbits, thread_before.secbits);
	subject_pass();
}
