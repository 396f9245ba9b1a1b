/*
 * unix-scm: fd 20/21 a stream socketpair with an fd in flight (SCM_RIGHTS:
 * /dev/null sent from 20, unread on 21). criu-ts refuses it; the dump must
 * leave the message in place: after SIGTERM 21 receives "fd" and a working fd.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || dup2(sv[0], 20) != 20 || dup2(sv[1], 21) != 21)
		subject_fail("socketpair: errno %d", errno);
	close(sv[0]);
	close(sv[1]);
	int nul = open("/dev/null", O_WRONLY);
	char cbuf[CMSG_SPACE(sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = { .iov_base = "fd", .iov_len = 2 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &nul, sizeof(int));
	if (sendmsg(20, &m, 0) != 2)
		subject_fail("sendmsg: errno %d", errno);
	close(nul);
	subject_ready();
	subject_wait_term();
	char buf[8];
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	m.msg_controllen = sizeof(cbuf);
	if (recvmsg(21, &m, MSG_DONTWAIT) != 2 || memcmp(buf, "fd", 2) != 0)
		subject_fail("the message is gone (errno %d)", errno);
	c = CMSG_FIRSTHDR(&m);
	int got = -1;
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&got, CMSG_DATA(c), sizeof(int));
	if (got < 0 || write(got, "x", 1) != 1)
		subject_fail("no working fd came with the message");
	subject_pass();
}
