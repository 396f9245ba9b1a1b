/*
 * tree: a process tree of three levels with two sessions and a process
 * group whose leader is gone. Every task remembers its pid, ppid, pgid and
 * sid and fills a private heap buffer before ready; at check time each one
 * verifies them and reports in a file of the work dir ("verdict-NAME") that
 * the root collects. A MAP_SHARED|MAP_ANONYMOUS table coordinates the set-up
 * only; after a restore the tasks talk through files (no pipes, no shared
 * memory: those belong to other tests).
 *
 *   root R            (the harness' session and group; ppid is not checked)
 *   +- A              R's session and group
 *   |  +- A1          R's session and group
 *   +- B              setsid(): a second session, led by B
 *   |  +- B1          B's session, its own group (setpgid(0,0))
 *   +- C              setpgid(0,0), then exits and is reaped by R
 *   +- D              joins group C (leader gone, group kept alive by D)
 *   |  +- D1          group C too
 *   +- E              forks E1 first, then setsid(): a third session
 *      +- E1          left behind in R's session and group, under a parent
 *                     that is not in it (a restore must create E1 before
 *                     E leaves the session)
 *
 * Check protocol: R creates the file "check" after SIGTERM; every other task
 * looks for it every 5 ms (a nanosleep restarted across the checkpoint),
 * verifies, writes its verdict file, reaps its own children and exits.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { R, A, A1, B, B1, D, D1, E, E1, NTASK };
static const char *const task_name[NTASK] = { "R", "A", "A1", "B", "B1", "D", "D1", "E", "E1" };

#define BUF_BYTES (64 * 1024)

struct slot {
	int pid, ppid, pgid, sid;
	volatile int ready;   /* set up and recorded */
};

struct shared {
	volatile int c_pgid; /* the group of the departed C */
	struct slot slot[NTASK];
};

static struct shared *sh;
static struct slot me; /* this task's own record, in private memory */
static unsigned char *buf;
static uint64_t buf_hash;

static void record(int who)
{
	struct slot *s = &sh->slot[who];
	buf = malloc(BUF_BYTES);
	if (buf == NULL)
		_exit(3);
	subject_fill(buf, BUF_BYTES, 0x7eee0000u + (uint64_t)who);
	buf_hash = subject_hash(buf, BUF_BYTES);
	s->pid = getpid();
	s->ppid = getppid();
	s->pgid = getpgid(0);
	s->sid = getsid(0);
	me = *s;
	__sync_synchronize();
	s->ready = 1;
}

/* Empty string when this task's ids and memory are as recorded. */
static void verify(int who, char *msg, size_t len)
{
	struct slot *s = &me;
	msg[0] = 0;
	if (getpid() != s->pid)
		snprintf(msg, len, "pid %d, was %d", getpid(), s->pid);
	else if (who != R && getppid() != s->ppid)
		snprintf(msg, len, "ppid %d, was %d", getppid(), s->ppid);
	else if (getpgid(0) != s->pgid)
		snprintf(msg, len, "pgid %d, was %d", getpgid(0), s->pgid);
	else if (getsid(0) != s->sid)
		snprintf(msg, len, "sid %d, was %d", getsid(0), s->sid);
	else if (subject_hash(buf, BUF_BYTES) != buf_hash)
		snprintf(msg, len, "heap buffer changed");
}

static void wait_for(volatile int *flag, const char *what)
{
	for (int i = 0; !*flag; i++) {
		if (i > 2000)
			subject_fail("timed out waiting for %s", what);
		subject_sleep_ms(5);
	}
}

/* Contents of the verdict file of task who ("" while missing). */
static void read_verdict(int who, char *text, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "verdict-%s", task_name[who]);
	text[0] = 0;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fgets(text, (int)len, f) == NULL)
		text[0] = 0;
	fclose(f);
}

/* A non-root task: wait for the check phase, verify, report, reap children, exit. */
static void __attribute__((noreturn)) member(int who, const pid_t *kids, int nkids)
{
	record(who);
	while (access("check", F_OK) != 0)
		subject_sleep_ms(5);
	char msg[200], text[220], path[64];
	verify(who, msg, sizeof(msg));
	snprintf(text, sizeof(text), "%s%s\n", msg[0] ? "FAIL: " : "PASS", msg);
	snprintf(path, sizeof(path), "verdict-%s", task_name[who]);
	subject_write_atomic(path, text);
	for (int i = 0; i < nkids; i++)
		waitpid(kids[i], NULL, 0);
	_exit(0);
}

static pid_t spawn(int who, void (*body)(int))
{
	pid_t p = fork();
	if (p < 0)
		subject_fail("fork %s: %s", task_name[who], strerror(errno));
	if (p == 0) {
		/* Children do not take the root's end signal. */
		signal(SIGTERM, SIG_DFL);
		body(who);
		_exit(0);
	}
	return p;
}

static void leaf(int who) { member(who, NULL, 0); }

static void task_a(int who)
{
	pid_t k = spawn(A1, leaf);
	member(who, &k, 1);
}

static void task_b1(int who)
{
	if (setpgid(0, 0) != 0)
		_exit(4);
	member(who, NULL, 0);
}

static void task_b(int who)
{
	if (setsid() < 0)
		_exit(4);
	pid_t k = spawn(B1, task_b1);
	member(who, &k, 1);
}

static void task_d1(int who) { member(who, NULL, 0); }

static void task_d(int who)
{
	if (setpgid(0, sh->c_pgid) != 0)
		_exit(4);
	pid_t k = spawn(D1, task_d1);
	member(who, &k, 1);
}

static void task_e(int who)
{
	pid_t k = spawn(E1, leaf);
	while (!sh->slot[E1].ready)
		subject_sleep_ms(1);
	if (setsid() < 0)
		_exit(4);
	member(who, &k, 1);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unlink("check");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		subject_fail("mmap shared: %s", strerror(errno));
	memset((void *)sh, 0, sizeof(*sh));
	record(R);

	pid_t a = spawn(A, task_a);
	pid_t b = spawn(B, task_b);

	/* C leads a new group, D joins it, then C exits and is reaped: the group outlives its leader. */
	pid_t c = fork();
	if (c < 0)
		subject_fail("fork C: %s", strerror(errno));
	if (c == 0) {
		if (setpgid(0, 0) != 0)
			_exit(4);
		while (!sh->c_pgid)
			subject_sleep_ms(1);
		while (!sh->slot[D].ready)
			subject_sleep_ms(1);
		_exit(0);
	}
	setpgid(c, c); /* both sides, so the group exists whoever runs first */
	sh->c_pgid = c;
	pid_t d = spawn(D, task_d);
	pid_t e = spawn(E, task_e);
	int st;
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("group leader C did not exit cleanly: 0x%x", st);

	for (int i = 0; i < NTASK; i++)
		wait_for(&sh->slot[i].ready, task_name[i]);
	if (getpgid(sh->slot[D].pid) != c || sh->slot[D1].pgid != c)
		subject_fail("D/D1 not in group %d", c);
	if (sh->slot[B].sid != sh->slot[B].pid || sh->slot[B1].sid != sh->slot[B].pid || sh->slot[B1].pgid != sh->slot[B1].pid)
		subject_fail("session B not as planned");
	if (sh->slot[E].sid != sh->slot[E].pid || sh->slot[E1].sid != sh->slot[R].sid || sh->slot[E1].pgid != sh->slot[R].pgid)
		subject_fail("session E not as planned");
	for (int i = 0; i < NTASK; i++)
		subject_log("%s pid %d ppid %d pgid %d sid %d", task_name[i], sh->slot[i].pid, sh->slot[i].ppid,
			    sh->slot[i].pgid, sh->slot[i].sid);

	subject_ready();
	subject_wait_term();

	char msg[200];
	verify(R, msg, sizeof(msg));
	if (msg[0])
		subject_fail("R: %s", msg);
	subject_write_atomic("check", "1\n");
	for (int i = 0; i < NTASK; i++) {
		if (i == R)
			continue;
		char text[220];
		for (int n = 0; read_verdict(i, text, sizeof(text)), !text[0]; n++) {
			if (n > 2000)
				subject_fail("no verdict from %s (pid %d)", task_name[i], sh->slot[i].pid);
			subject_sleep_ms(5);
		}
		if (strncmp(text, "PASS", 4) != 0)
			subject_fail("%s: %s", task_name[i], text);
	}
	pid_t kids[] = { a, b, d, e };
	for (int i = 0; i < 4; i++) {
		if (waitpid(kids[i], &st, 0) != kids[i])
			subject_fail("waitpid %d: %s", kids[i], strerror(errno));
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			subject_fail("child %d status 0x%x", kids[i], st);
	}
	subject_pass();
}
