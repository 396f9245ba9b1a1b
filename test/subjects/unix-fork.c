/*
 * unix-fork: a stream socketpair split over a fork. The child holds fd 21
 * and sends "hello" at once (left unread in the parent's fd 20), then waits
 * in recv(). After SIGTERM the parent reads "hello", sends "ping"; the child
 * answers "pong" and exits 0. A dgram pair 22/23 is shared by both (dup'd
 * through fork) with one datagram queued on 23.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void pair_at(int type, int x, int y)
{
	int sv[2];
	if (socketpair(AF_UNIX, type, 0, sv) != 0 || dup2(sv[0], x) != x || dup2(sv[1], y) != y)
		subject_fail("socketpair: errno %d", errno);
	close(sv[0]);
	close(sv[1]);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	pair_at(SOCK_STREAM, 20, 21);
	pair_at(SOCK_DGRAM, 22, 23);
	if (send(22, "dg", 2, 0) != 2)
		subject_fail("send dg");
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);
	pid_t child = fork();
	if (child < 0)
		subject_fail("fork");
	if (child == 0) {
		char buf[16];
		close(20);
		if (send(21, "hello", 5, 0) != 5)
			_exit(2);
		ssize_t n;
		do
			n = recv(21, buf, sizeof(buf), 0);
		while (n < 0 && errno == EINTR);
		if (n != 4 || memcmp(buf, "ping", 4) != 0)
			_exit(3);
		_exit(send(21, "pong", 4, 0) == 4 ? 0 : 4);
	}
	sigprocmask(SIG_UNBLOCK, &term, NULL);
	close(21);
	/* let the child's "hello" land before we say ready */
	struct pollfd p = { .fd = 20, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		subject_fail("no hello from the child");
	subject_ready();
	subject_wait_term();
	subject_expect_recv(20, "hello", "hello from the child");
	if (send(20, "ping", 4, 0) != 4)
		subject_fail("send ping");
	subject_expect_recv(20, "pong", "pong from the child");
	subject_expect_recv(23, "dg", "shared dgram pair");
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			subject_fail("waitpid: errno %d", errno);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("child status %#x", st);
	subject_pass();
}
