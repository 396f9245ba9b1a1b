/*
 * mqueue: POSIX message queues held open, and with --ipc-ns 1 the task's own
 * ipc namespace holding a queue nobody has open. Kept across a restore:
 * - queue A (named, mode 0640, 8 messages of at most 64 bytes) holding four
 *   messages of priorities 1, 5, 1, 0 (the last one empty), open read-write
 *   at fd 30 and write-only non-blocking at fd 31; in the caller's ipc
 *   namespace it is left in place by the dump, in an ipc namespace of the
 *   subject's own it is saved with the namespace;
 * - queue B (unlinked, mode 0600, 4 messages of at most 128 bytes) holding
 *   a 128-byte binary message of priority 7 and "b3" of priority 3, open
 *   read-write at fd 32 and read-only non-blocking at fd 33;
 * - with --ipc-ns 1, queue C (named, no fd) holding "c" of priority 2.
 * Checked: attributes, flags, modes, every message in order with its
 * priority, B still unlinked, C still there; the named queues are removed
 * at the end.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char name_a[64], name_b[64], name_c[64];

static mqd_t make(const char *name, int flags, mode_t mode, long maxmsg, long msgsize)
{
	struct mq_attr a = { .mq_maxmsg = maxmsg, .mq_msgsize = msgsize };
	mqd_t q = mq_open(name, flags | O_CREAT | O_EXCL, mode, &a);
	if (q == (mqd_t)-1)
		subject_fail("mq_open %s: errno %d", name, errno);
	return q;
}

static void put(mqd_t q, const void *data, size_t len, unsigned prio)
{
	if (mq_send(q, data, len, prio) != 0)
		subject_fail("mq_send prio %u: errno %d", prio, errno);
}

static void expect(int fd, const void *data, size_t len, unsigned prio, const char *what)
{
	char buf[256];
	unsigned got_prio = 0;
	ssize_t n = mq_receive(fd, buf, sizeof(buf), &got_prio);
	if (n < 0)
		subject_fail("%s: mq_receive errno %d", what, errno);
	if ((size_t)n != len || got_prio != prio || memcmp(buf, data, len) != 0)
		subject_fail("%s: got %zd bytes of priority %u, want %zu of %u", what, n, got_prio, len, prio);
}

static void check_attr(int fd, long maxmsg, long msgsize, long cur, const char *what)
{
	struct mq_attr a;
	if (mq_getattr(fd, &a) != 0)
		subject_fail("%s: mq_getattr errno %d", what, errno);
	if (a.mq_maxmsg != maxmsg || a.mq_msgsize != msgsize || a.mq_curmsgs != cur)
		subject_fail("%s: maxmsg %ld msgsize %ld curmsgs %ld", what, a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);
}

static void check_flags(int fd, int want, const char *what)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & (O_ACCMODE | O_NONBLOCK)) != want)
		subject_fail("%s: flags 0%o, want 0%o", what, fl, want);
}

static void check_mode(int fd, mode_t want, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || (st.st_mode & 07777) != want)
		subject_fail("%s: mode 0%o, want 0%o", what, st.st_mode & 07777, want);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int own_ns = subject_opt_long("ipc-ns", 0) != 0;
	if (own_ns && unshare(CLONE_NEWIPC) != 0)
		subject_fail("unshare(CLONE_NEWIPC): errno %d", errno);
	snprintf(name_a, sizeof(name_a), "/criu-ts-mq-a-%d", (int)getpid());
	snprintf(name_b, sizeof(name_b), "/criu-ts-mq-b-%d", (int)getpid());
	snprintf(name_c, sizeof(name_c), "/criu-ts-mq-c-%d", (int)getpid());
	mode_t old = umask(0);

	mqd_t a = make(name_a, O_RDWR, 0640, 8, 64);
	put(a, "a1", 2, 1);
	put(a, "a5", 2, 5);
	put(a, "a1b", 3, 1);
	put(a, "", 0, 0);
	subject_at(30, a, "queue a");
	subject_at(31, mq_open(name_a, O_WRONLY | O_NONBLOCK), "queue a write-only");

	unsigned char bin[128];
	for (int i = 0; i < 128; i++)
		bin[i] = (unsigned char)(i * 37 + 11);
	mqd_t b = make(name_b, O_RDWR, 0600, 4, 128);
	put(b, "b3", 2, 3);
	put(b, bin, sizeof(bin), 7);
	subject_at(32, b, "queue b");
	subject_at(33, mq_open(name_b, O_RDONLY | O_NONBLOCK), "queue b read-only");
	if (mq_unlink(name_b) != 0)
		subject_fail("mq_unlink b: errno %d", errno);

	if (own_ns) {
		mqd_t c = make(name_c, O_WRONLY, 0604, 2, 16);
		put(c, "c", 1, 2);
		mq_close(c);
	}
	umask(old);

	subject_ready();
	subject_wait_term();

	check_attr(30, 8, 64, 4, "queue a");
	check_flags(30, O_RDWR, "fd 30");
	check_flags(31, O_WRONLY | O_NONBLOCK, "fd 31");
	check_mode(30, 0640, "queue a");
	expect(30, "a5", 2, 5, "a: first");
	expect(30, "a1", 2, 1, "a: second");
	expect(30, "a1b", 3, 1, "a: third");
	expect(30, "", 0, 0, "a: fourth");
	put(31, "again", 5, 4);
	expect(30, "again", 5, 4, "a: sent after restore");

	check_attr(33, 4, 128, 2, "queue b");
	check_flags(32, O_RDWR, "fd 32");
	check_flags(33, O_RDONLY | O_NONBLOCK, "fd 33");
	check_mode(32, 0600, "queue b");
	expect(33, bin, sizeof(bin), 7, "b: first");
	expect(33, "b3", 2, 3, "b: second");
	if (mq_open(name_b, O_RDONLY) != (mqd_t)-1 || errno != ENOENT)
		subject_fail("queue b has a name again");

	if (own_ns) {
		mqd_t c = mq_open(name_c, O_RDONLY);
		if (c == (mqd_t)-1)
			subject_fail("queue c is gone: errno %d", errno);
		check_attr(c, 2, 16, 1, "queue c");
		check_mode(c, 0604, "queue c");
		expect(c, "c", 1, 2, "c: its message");
		mq_unlink(name_c);
	}
	mq_unlink(name_a);
	subject_pass();
}
