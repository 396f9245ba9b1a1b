/*
 * unix-pair: socketpairs of every type with bytes queued both ways.
 *   20/21 SOCK_STREAM: 3 writes 20->21 (7000 bytes), 1 write 21->20; 20 O_NONBLOCK
 *   22/23 SOCK_DGRAM: datagrams of 1, 100, 3000 bytes 22->23, one 23->22
 *   24/25 SOCK_SEQPACKET: records of 10, 20000 bytes 24->25; 25 SO_SNDBUF 65536, SO_PASSCRED
 *   26/27 SOCK_STREAM: 26 shut down for writing after 5 bytes, 27 for reading... as the kernel mirrors
 *   28    SOCK_STREAM whose peer closed (EOF after 4 bytes)
 *   30    dup of 20: one open file description (shared O_NONBLOCK, one queue)
 *   31    SOCK_DGRAM whose peer sent two datagrams and closed
 * After SIGTERM: every message comes back with its boundaries, then both
 * directions still work, shutdown and options are as they were.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned char a[7000], b[20000], got[32768];

static void pair_at(int type, int x, int y)
{
	int sv[2];
	if (socketpair(AF_UNIX, type, 0, sv) != 0)
		subject_fail("socketpair type %d: errno %d", type, errno);
	int hx = fcntl(sv[0], F_DUPFD, 100), hy = fcntl(sv[1], F_DUPFD, 100);
	close(sv[0]);
	close(sv[1]);
	if (dup2(hx, x) != x || dup2(hy, y) != y)
		subject_fail("dup2");
	close(hx);
	close(hy);
}

static void send_exact(int fd, const void *p, size_t len)
{
	if (send(fd, p, len, 0) != (ssize_t)len)
		subject_fail("send %zu on fd %d: errno %d", len, fd, errno);
}

/* one recv must return exactly this message (boundaries kept) */
static void expect_msg(int fd, const void *want, size_t len, const char *what)
{
	ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
	if (n != (ssize_t)len || memcmp(got, want, len) != 0)
		subject_fail("%s: got %zd bytes (errno %d), want %zu", what, n, errno, len);
}

static void expect_stream(int fd, const void *want, size_t len, const char *what)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = recv(fd, got + off, len - off, MSG_DONTWAIT);
		if (n <= 0)
			subject_fail("%s: recv %zd errno %d after %zu bytes", what, n, errno, off);
		off += (size_t)n;
	}
	if (memcmp(got, want, len) != 0)
		subject_fail("%s: bytes differ", what);
}

static void expect_empty(int fd, const char *what)
{
	if (recv(fd, got, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
		subject_fail("%s: queue should be empty", what);
}

static int opt(int fd, int name)
{
	int v = 0;
	socklen_t l = sizeof(v);
	getsockopt(fd, SOL_SOCKET, name, &v, &l);
	return v;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	subject_fill(a, sizeof(a), 21);
	subject_fill(b, sizeof(b), 22);

	pair_at(SOCK_STREAM, 20, 21);
	send_exact(20, a, 1000);
	send_exact(20, a + 1000, 2000);
	send_exact(20, a + 3000, 4000);
	send_exact(21, "back", 4);
	fcntl(20, F_SETFL, O_NONBLOCK);
	if (dup2(20, 30) != 30)
		subject_fail("dup2 30");

	pair_at(SOCK_DGRAM, 22, 23);
	send_exact(22, a, 1);
	send_exact(22, a + 1, 100);
	send_exact(22, a + 101, 3000);
	send_exact(23, "pong", 4);

	pair_at(SOCK_SEQPACKET, 24, 25);
	int sb = 65536, one = 1;
	setsockopt(25, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	setsockopt(25, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	send_exact(24, b, 10);
	send_exact(24, b + 10, 20000);

	pair_at(SOCK_STREAM, 26, 27);
	send_exact(26, "fiver", 5);
	shutdown(26, SHUT_WR);

	pair_at(SOCK_STREAM, 28, 29);
	send_exact(29, "last", 4);
	close(29);

	pair_at(SOCK_DGRAM, 31, 32);
	send_exact(32, "dead-peer", 9);
	send_exact(32, "said", 4);
	close(32);

	int sndbuf25 = opt(25, SO_SNDBUF);

	subject_ready();
	subject_wait_term();

	if ((fcntl(20, F_GETFL) & O_NONBLOCK) == 0 || (fcntl(21, F_GETFL) & O_NONBLOCK) != 0)
		subject_fail("O_NONBLOCK on the wrong end");
	expect_stream(21, a, sizeof(a), "stream 20->21");
	if ((fcntl(30, F_GETFL) & O_NONBLOCK) == 0)
		subject_fail("fd 30 lost the O_NONBLOCK it shares with 20");
	expect_stream(30, "ba", 2, "stream 21->20 through the dup");
	expect_stream(20, "ck", 2, "stream 21->20");
	expect_empty(21, "stream 21");
	send_exact(21, "again", 5);
	expect_stream(20, "again", 5, "stream after restore");

	expect_msg(23, a, 1, "dgram 1");
	expect_msg(23, a + 1, 100, "dgram 2");
	expect_msg(23, a + 101, 3000, "dgram 3");
	expect_empty(23, "dgram 23");
	expect_msg(22, "pong", 4, "dgram back");
	send_exact(23, "x", 1);
	expect_msg(22, "x", 1, "dgram after restore");

	expect_msg(25, b, 10, "seqpacket 1");
	expect_msg(25, b + 10, 20000, "seqpacket 2");
	expect_empty(25, "seqpacket 25");
	if (opt(25, SO_SNDBUF) != sndbuf25 || !opt(25, SO_PASSCRED) || opt(24, SO_PASSCRED))
		subject_fail("seqpacket options: sndbuf %d want %d, passcred %d/%d", opt(25, SO_SNDBUF), sndbuf25, opt(25, SO_PASSCRED), opt(24, SO_PASSCRED));
	int ty = opt(24, SO_TYPE);
	if (ty != SOCK_SEQPACKET)
		subject_fail("fd 24 type %d", ty);

	expect_stream(27, "fiver", 5, "shut stream");
	if (recv(27, got, 1, MSG_DONTWAIT) != 0)
		subject_fail("27: no EOF after its peer's SHUT_WR");
	if (send(26, "y", 1, 0) != -1 || errno != EPIPE)
		subject_fail("26: send after SHUT_WR should fail with EPIPE (errno %d)", errno);
	send_exact(27, "z", 1);
	expect_stream(26, "z", 1, "shut stream other way");

	expect_stream(28, "last", 4, "orphan stream");
	if (recv(28, got, 1, MSG_DONTWAIT) != 0)
		subject_fail("28: no EOF after its peer closed");

	expect_msg(31, "dead-peer", 9, "orphan dgram 1");
	expect_msg(31, "said", 4, "orphan dgram 2");
	expect_empty(31, "orphan dgram");
	subject_pass();
}
