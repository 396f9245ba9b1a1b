/*
 * seccomp-filter: two stacked seccomp filters installed under
 * no_new_privs: the first makes uname() fail with EACCES, the second makes
 * getcwd() fail with ENOTTY. After restore the thread must still be in
 * filter mode with both filters (/proc/self/status Seccomp_filters), each
 * rule must still apply, no_new_privs must still be set, and ordinary
 * calls must work.
 */
#include "subject.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static int filters_in_status(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Seccomp_filters: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || subject_seccomp_deny(SYS_uname, EACCES, 0) || subject_seccomp_deny(SYS_getcwd, ENOTTY, 0))
		subject_fail("installing filters: %s", strerror(errno));
	subject_ready();
	subject_wait_term();

	struct utsname u;
	char buf[64];
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
		subject_fail("not in seccomp filter mode after restore");
	if (filters_in_status() != 2)
		subject_fail("expected 2 filters, status says %d", filters_in_status());
	if (uname(&u) == 0 || errno != EACCES)
		subject_fail("uname() is no longer filtered");
	if (syscall(SYS_getcwd, buf, sizeof buf) >= 0 || errno != ENOTTY)
		subject_fail("getcwd() is no longer filtered");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		subject_fail("no_new_privs lost");
	if (getpid() <= 0)
		subject_fail("getpid broken");
	subject_pass();
}
