/*
 * orphan-session: the daemon pattern. The root is a child subreaper; its
 * child S calls setsid(), forks S1 and exits; the root reaps S. S1 now
 * lives under the root in a session (and process group) whose leader is
 * gone. After a restore S1 must still have S's sid and pgid, the root as
 * parent, and its memory; it reports through the file "verdict" once the
 * root creates "check". The root must still be a child subreaper.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF_BYTES (64 * 1024)

/* S1: remember who we are, wait for "check", verify, write "verdict". */
static void __attribute__((noreturn)) grandchild(pid_t root)
{
	pid_t sid = getsid(0), pgid = getpgid(0), me = getpid();
	unsigned char *buf = malloc(BUF_BYTES);
	if (buf == NULL)
		_exit(3);
	subject_fill(buf, BUF_BYTES, 0x0d43);
	uint64_t h = subject_hash(buf, BUF_BYTES);
	/* Wait until S has gone and we belong to the root. */
	while (getppid() != root)
		subject_sleep_ms(1);
	subject_write_atomic("s1-ready", "1\n");
	while (access("check", F_OK) != 0) {
		if (getppid() != root)
			_exit(4);
		subject_sleep_ms(5);
	}
	char text[200] = "PASS\n";
	if (getpid() != me || getsid(0) != sid || getpgid(0) != pgid)
		snprintf(text, sizeof(text), "FAIL: S1 ids pid %d sid %d pgid %d, were %d %d %d\n", getpid(), getsid(0),
			 getpgid(0), me, sid, pgid);
	else if (subject_hash(buf, BUF_BYTES) != h)
		snprintf(text, sizeof(text), "FAIL: S1 memory changed\n");
	subject_write_atomic("verdict", text);
	_exit(0);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unlink("check");
	unlink("verdict");
	unlink("s1-ready");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		subject_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	pid_t root = getpid();
	pid_t s = fork();
	if (s < 0)
		subject_fail("fork: %s", strerror(errno));
	if (s == 0) {
		signal(SIGTERM, SIG_DFL);
		if (setsid() < 0)
			_exit(4);
		pid_t s1 = fork();
		if (s1 < 0)
			_exit(4);
		if (s1 == 0)
			grandchild(root);
		_exit(0);
	}
	int st;
	if (waitpid(s, &st, 0) != s || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("session leader S did not exit cleanly: 0x%x", st);
	for (int i = 0; access("s1-ready", F_OK) != 0; i++) {
		if (i > 4000)
			subject_fail("S1 never became our child");
		subject_sleep_ms(5);
	}
	subject_log("session %d lives on without its leader", s);

	subject_ready();
	subject_wait_term();
	int reaper = 0;
	if (prctl(PR_GET_CHILD_SUBREAPER, &reaper) != 0 || reaper != 1)
		subject_fail("no longer a child subreaper (%d)", reaper);
	subject_write_atomic("check", "1\n");
	char text[200] = "";
	for (int i = 0; !text[0]; i++) {
		FILE *f = fopen("verdict", "re");
		if (f != NULL) {
			if (fgets(text, sizeof(text), f) == NULL)
				text[0] = 0;
			fclose(f);
		}
		if (!text[0] && i > 2000)
			subject_fail("no verdict from S1");
		if (!text[0])
			subject_sleep_ms(5);
	}
	if (strncmp(text, "PASS", 4) != 0)
		subject_fail("%s", text);
	/* S1 is our child now (we are its subreaper). */
	pid_t r = wait(&st);
	if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("S1 wait: %d status 0x%x", r, st);
	subject_pass();
}
