/*
 * thp-fork: the THP-disabled flag of an mm (PR_SET_THP_DISABLE) is copied
 * by fork. The parent disables THP, then forks two children: one keeps
 * the flag it inherited, the other enables THP again. A restore forks a
 * child from its restored parent and sets the flag only where the child's
 * differs from what it inherits: both must come back as they were. At
 * check time the parent creates the file "check"; each child exits with
 * its flag (10 + flag), which the parent checks.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int set_pipe[2];

static pid_t child(int thp_disabled)
{
	pid_t p = fork();
	if (p < 0)
		subject_fail("fork: %s", strerror(errno));
	if (p > 0)
		return p;
	signal(SIGTERM, SIG_DFL);
	if (prctl(PR_SET_THP_DISABLE, thp_disabled, 0, 0, 0) != 0)
		_exit(2);
	close(set_pipe[0]);
	if (write(set_pipe[1], "s", 1) != 1)
		_exit(2);
	close(set_pipe[1]);
	while (access("check", F_OK) != 0) {
		if (getppid() == 1)
			_exit(3);
		subject_sleep_ms(5);
	}
	_exit(10 + prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
}

static void expect_child(pid_t p, int thp_disabled)
{
	int st;
	if (waitpid(p, &st, 0) != p)
		subject_fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 10 + thp_disabled)
		subject_fail("child %d: status 0x%x, want exit %d (10 + THP disabled %d)", p, st, 10 + thp_disabled, thp_disabled);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unlink("check");
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		subject_fail("prctl(SET_THP_DISABLE): %s", strerror(errno));
	if (pipe2(set_pipe, O_CLOEXEC) != 0)
		subject_fail("pipe: %s", strerror(errno));
	pid_t same = child(1);
	pid_t other = child(0);
	close(set_pipe[1]);
	char words[2];
	for (size_t got = 0; got < sizeof(words);) {
		ssize_t n = read(set_pipe[0], words + got, sizeof(words) - got);
		if (n <= 0)
			subject_fail("the children's word that their flag is set: %zd after %zu bytes", n, got);
		got += (size_t)n;
	}
	close(set_pipe[0]);
	subject_ready();
	subject_wait_term();
	if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1)
		subject_fail("THP disabled %d, want 1", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
	FILE *f = fopen("check", "we");
	if (f == NULL || fclose(f) != 0)
		subject_fail("create 'check': %s", strerror(errno));
	expect_child(same, 1);
	expect_child(other, 0);
	subject_pass();
}
