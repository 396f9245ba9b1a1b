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

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_pair_at(SOCK_STREAM, 20, 21);
	subject_pair_at(SOCK_DGRAM, 22, 23);
	if (send(22, "dg", 2, 0) != 2)
		subject_fail("send dg");
	pid_t child = subject_fork_quiet();
	if (child == 0) {
		close(20);
		if (send(21, "hello", 5, 0) != 5)
			_exit(2);
		subject_answer_and_exit(21, "ping", 21, "pong");
	}
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
	subject_reap_ok(child, "the child");
	subject_pass();
}
