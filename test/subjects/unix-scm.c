/*
 * unix-scm: files in flight (SCM_RIGHTS), unread at the checkpoint.
 *   20/21 stream pair: "fd" from 20 carrying /dev/null (write-only)
 *   22/23 datagram pair: "r" carrying a pipe's read end, "w" carrying its
 *         write end (the pipe has "piped" in it; no task holds either end),
 *         then "two" carrying a file at offset 3 twice in one message
 *   24    datagram socket whose peer sent "orphan" with an eventfd (count 5)
 *         and closed
 *   26/27 stream pair: "sk" carrying one end of another pair, itself
 *         carrying "inner" with a memfd-free regular file (a socket in
 *         flight that carries a file in flight)
 * After SIGTERM every message comes back with working fds of the same kind,
 * shared where they were one file.
 * With --loop 1 instead, sockets in flight inside their own queues, held
 * by the task too: 20 is sent over 21 into its own queue ("loop"), and
 * each of the datagram pair 22/23 carries both 22 and 23 (zdtm scm06's
 * vinaigrette); after restore each message brings back the very socket.
 * With --loop 2: a loop of files only in flight (30, sent into its own
 * queue over 31, then in flight in 22's queue; 30 and 31 closed), which criu-ts
 * refuses (the messages stay).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void send_fds(int sk, const char *text, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	if (sendmsg(sk, &m, 0) != (ssize_t)strlen(text))
		subject_fail("sendmsg %s: errno %d", text, errno);
}

/* Whether two fds are one socket (its inode). */
static int same_file(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* Receive `text` and the fds that come with it; returns how many. */
static int recv_fds(int sk, const char *text, int *fds, int max)
{
	char buf[64], cbuf[CMSG_SPACE(4 * sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(sk, &m, MSG_DONTWAIT);
	if (n != (ssize_t)strlen(text) || memcmp(buf, text, (size_t)n) != 0)
		subject_fail("message '%s' is gone (got %zd bytes, errno %d)", text, n, errno);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		subject_fail("message '%s' came without its fds", text);
	int got = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
	if (got > max)
		subject_fail("message '%s': %d fds", text, got);
	memcpy(fds, CMSG_DATA(c), (size_t)got * sizeof(int));
	return got;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_pair_at(SOCK_STREAM, 20, 21);
	long loop = subject_opt_long("loop", 0);
	if (loop == 1) {
		int self = 20;
		send_fds(21, "loop", &self, 1);
		subject_pair_at(SOCK_DGRAM, 22, 23);
		int both[2] = { 22, 23 };
		send_fds(22, "a", both, 2);
		send_fds(23, "b", both, 2);
		subject_ready();
		subject_wait_term();
		int fd, two[2];
		if (recv_fds(20, "loop", &fd, 1) != 1)
			subject_fail("loop message");
		if (!same_file(fd, 20))
			subject_fail("the socket in its own queue is not that socket any more");
		if (recv_fds(23, "a", two, 2) != 2 || !same_file(two[0], 22) || !same_file(two[1], 23))
			subject_fail("23's queue does not carry 22 and 23 themselves");
		if (recv_fds(22, "b", two, 2) != 2 || !same_file(two[0], 22) || !same_file(two[1], 23))
			subject_fail("22's queue does not carry 22 and 23 themselves");
		/* and they still work: through the received copy of 22, to 23 */
		if (write(two[0], "x", 1) != 1 || read(23, &fd, sizeof(fd)) != 1)
			subject_fail("the pair does not carry data after restore");
		subject_pass();
	}
	if (loop == 2) {
		subject_pair_at(SOCK_STREAM, 30, 31);
		int self = 30;
		send_fds(31, "loop", &self, 1);
		subject_pair_at(SOCK_DGRAM, 22, 23);
		send_fds(23, "carrier", &self, 1);
		close(30);
		close(31);
		subject_ready();
		subject_wait_term();
		int fd;
		if (recv_fds(22, "carrier", &fd, 1) != 1 || recv_fds(fd, "loop", &fd, 1) != 1)
			subject_fail("the loop's messages are gone");
		subject_pass();
	}
	int nul = open("/dev/null", O_WRONLY);
	send_fds(20, "fd", &nul, 1);
	close(nul);

	subject_pair_at(SOCK_DGRAM, 22, 23);
	int p[2];
	if (pipe(p) || write(p[1], "piped", 5) != 5)
		subject_fail("pipe");
	send_fds(22, "r", &p[0], 1);
	send_fds(22, "w", &p[1], 1);
	close(p[0]);
	close(p[1]);
	int f = subject_new_file("scm-file", 0600, "abcdefgh", 8);
	if (lseek(f, 3, SEEK_SET) != 3)
		subject_fail("file");
	int twice[2] = { f, f };
	send_fds(22, "two", twice, 2);
	close(f);

	subject_pair_at(SOCK_DGRAM, 24, 25);
	int ev = eventfd(5, 0);
	send_fds(25, "orphan", &ev, 1);
	close(ev);
	close(25);

	subject_pair_at(SOCK_STREAM, 26, 27);
	int in[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, in))
		subject_fail("inner pair");
	int g = subject_new_file("scm-inner", 0600, "deep", 4);
	send_fds(in[1], "inner", &g, 1);
	close(g);
	close(in[1]);
	send_fds(26, "sk", &in[0], 1);
	close(in[0]);

	subject_ready();
	subject_wait_term();

	int fd[4];
	if (recv_fds(21, "fd", fd, 4) != 1 || write(fd[0], "x", 1) != 1)
		subject_fail("/dev/null in flight does not write");
	int r, w;
	if (recv_fds(23, "r", &r, 1) != 1 || recv_fds(23, "w", &w, 1) != 1)
		subject_fail("pipe ends");
	char buf[16] = { 0 };
	if (read(r, buf, 5) != 5 || memcmp(buf, "piped", 5))
		subject_fail("pipe in flight lost its bytes: '%s'", buf);
	if (write(w, "more", 4) != 4 || read(r, buf, 4) != 4 || memcmp(buf, "more", 4))
		subject_fail("the two ends in flight are not one pipe");
	if (recv_fds(23, "two", fd, 4) != 2)
		subject_fail("two fds");
	if (lseek(fd[0], 0, SEEK_CUR) != 3 || read(fd[0], buf, 1) != 1 || buf[0] != 'd' || lseek(fd[1], 0, SEEK_CUR) != 4)
		subject_fail("the file sent twice is not one open file at offset 3");
	int e;
	uint64_t cnt = 0;
	if (recv_fds(24, "orphan", &e, 1) != 1 || read(e, &cnt, 8) != 8 || cnt != 5)
		subject_fail("eventfd from the closed peer: count %llu", (unsigned long long)cnt);
	int s, h;
	if (recv_fds(27, "sk", &s, 1) != 1 || recv_fds(s, "inner", &h, 1) != 1)
		subject_fail("socket in flight carrying a file");
	if (pread(h, buf, 4, 0) != 4 || memcmp(buf, "deep", 4))
		subject_fail("file in flight inside a socket in flight");
	subject_pass();
}
