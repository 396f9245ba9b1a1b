/*
 * epoll-in-flight: an epoll instance that exists only in a socket queue
 * (sent with SCM_RIGHTS, twice, then closed), watching a datagram socket
 * and a pipe with their own event data. After restore the epoll is
 * received back, and both targets report readiness with the data they were
 * added with: the epoll came back with its targets, not empty.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCK_DATA 0x1122334455667788ULL
#define PIPE_DATA 0x99aabbccddeeff00ULL

static int send_fd(int via, int fd)
{
	char c = 'e';
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	memset(&u, 0, sizeof(u));
	struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *ch = CMSG_FIRSTHDR(&h);
	ch->cmsg_level = SOL_SOCKET;
	ch->cmsg_type = SCM_RIGHTS;
	ch->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(ch), &fd, sizeof(int));
	return sendmsg(via, &h, 0) == 1 ? 0 : -1;
}

static int recv_fd(int via)
{
	char c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	if (recvmsg(via, &h, MSG_DONTWAIT) != 1)
		return -1;
	struct cmsghdr *ch = CMSG_FIRSTHDR(&h);
	if (ch == NULL || ch->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(ch), sizeof(int));
	return fd;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int sk[2], p[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sk) != 0 || pipe(p) != 0)
		subject_fail("socketpair/pipe: %m");
	int ep = epoll_create1(0);
	if (ep < 0)
		subject_fail("epoll_create1: %m");
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SOCK_DATA };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sk[1], &ev) != 0)
		subject_fail("epoll_ctl sock: %m");
	ev.data.u64 = PIPE_DATA;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) != 0)
		subject_fail("epoll_ctl pipe: %m");
	if (send_fd(sk[0], ep) != 0 || send_fd(sk[0], ep) != 0)
		subject_fail("send epoll: %m");
	close(ep);
	subject_ready();
	subject_wait_term();

	for (int i = 0; i < 2; i++) {
		int got = recv_fd(sk[1]);
		if (got < 0)
			subject_fail("epoll %d not received back: %m", i + 1);
		if (i == 0)
			ep = got;
		else
			close(got);
	}
	struct epoll_event out[4];
	if (epoll_wait(ep, out, 4, 0) != 0)
		subject_fail("the epoll reports events before any data");
	if (send(sk[0], "x", 1, 0) != 1 || write(p[1], "y", 1) != 1)
		subject_fail("send/write: %m");
	int n = epoll_wait(ep, out, 4, 1000);
	int sock_seen = 0, pipe_seen = 0;
	for (int i = 0; i < n; i++) {
		if (out[i].data.u64 == SOCK_DATA)
			sock_seen = 1;
		else if (out[i].data.u64 == PIPE_DATA)
			pipe_seen = 1;
		else
			subject_fail("event with unknown data 0x%llx", (unsigned long long)out[i].data.u64);
	}
	if (!sock_seen || !pipe_seen)
		subject_fail("epoll reported %d event(s): socket %s, pipe %s", n, sock_seen ? "yes" : "no", pipe_seen ? "yes" : "no");
	subject_pass();
}
