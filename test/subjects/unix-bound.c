/*
 * unix-bound: named unix sockets, listeners and pending connections.
 *   20 dgram bound to CWD/srv.sock (absolute, mode 0604), 2 datagrams queued
 *   21 dgram bound to "rel.sock" (relative name), 1 datagram queued
 *   22 dgram connected to srv.sock
 *   23 dgram bound to an abstract name, 1 datagram queued
 *   24 stream listener on "lsn.sock", backlog 7; 25 and 26 connected, not accepted
 *   27 client of 24 accepted as 28: "hello" queued 27->28, "world" 28->27
 *   29 seqpacket listener on an abstract name
 *   30 dgram bound to "gone.sock", then the file unlinked; 31 bound there since
 *   also 8 datagrams of 50000 bytes queued on 20 (more than one sender's buffer holds)
 * After SIGTERM: names, queued datagrams, the connection from 22, both
 * pending connections in order, the accepted pair and new connections work.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char srv[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char abs1[64], abs2[64];
static unsigned char got[8192], big[65536];

static socklen_t addr_of(struct sockaddr_un *sa, const char *name, size_t len)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

static int bound(int type, const char *name, size_t len)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, addr_of(&sa, name, len)) != 0)
		subject_fail("bind %s: errno %d", name[0] ? name : name + 1, errno);
	return fd;
}

static int connected(int type, const char *name, size_t len)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, addr_of(&sa, name, len)) != 0)
		subject_fail("connect %s: errno %d", name[0] ? name : name + 1, errno);
	return fd;
}

static void send_to(const char *name, size_t len, const void *p, size_t n)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sendto(fd, p, n, 0, (struct sockaddr *)&sa, addr_of(&sa, name, len)) != (ssize_t)n)
		subject_fail("sendto: errno %d", errno);
	close(fd);
}

static void expect_msg(int fd, const char *want, const char *what)
{
	ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
	if (n != (ssize_t)strlen(want) || memcmp(got, want, (size_t)n) != 0)
		subject_fail("%s: got %zd bytes (errno %d), want \"%s\"", what, n, errno, want);
}

static void expect_name(int fd, const char *want, size_t len, const char *what)
{
	struct sockaddr_un sa;
	socklen_t l = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &l) != 0 || l != offsetof(struct sockaddr_un, sun_path) + len ||
	    memcmp(sa.sun_path, want, len) != 0)
		subject_fail("%s: wrong socket name (len %u)", what, (unsigned)l);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char cwd[64];
	if (!getcwd(cwd, sizeof(cwd)))
		subject_fail("getcwd");
	snprintf(srv, sizeof(srv), "%s/srv.sock", cwd);
	int n1 = snprintf(abs1 + 1, sizeof(abs1) - 1, "criu-ts-ud-%d", (int)getpid()) + 1;
	int n2 = snprintf(abs2 + 1, sizeof(abs2) - 1, "criu-ts-sl-%d", (int)getpid()) + 1;

	subject_at(20, bound(SOCK_DGRAM, srv, strlen(srv) + 1), "srv");
	chmod(srv, 0604);
	send_to(srv, strlen(srv) + 1, "one", 3);
	send_to(srv, strlen(srv) + 1, "two", 3);
	static unsigned char k[50000];
	for (int i = 0; i < 8; i++) {
		k[0] = (unsigned char)i;
		send_to(srv, strlen(srv) + 1, k, sizeof(k));
	}
	subject_at(21, bound(SOCK_DGRAM, "rel.sock", 8), "rel");
	send_to("rel.sock", 8, "rel", 3);
	subject_at(22, connected(SOCK_DGRAM, srv, strlen(srv) + 1), "client");
	subject_at(23, bound(SOCK_DGRAM, abs1, (size_t)n1), "abstract");
	send_to(abs1, (size_t)n1, "abs", 3);

	subject_at(24, bound(SOCK_STREAM, "lsn.sock", 9), "listener");
	if (listen(24, 7) != 0)
		subject_fail("listen");
	subject_at(25, connected(SOCK_STREAM, "lsn.sock", 9), "pending 1");
	subject_at(26, connected(SOCK_STREAM, "lsn.sock", 9), "pending 2");
	subject_at(27, connected(SOCK_STREAM, "lsn.sock", 9), "client 3");
	/* the first two wait; take the third out of the queue */
	int c1 = accept(24, NULL, NULL), c2 = accept(24, NULL, NULL), c3 = accept(24, NULL, NULL);
	if (c1 < 0 || c2 < 0 || c3 < 0)
		subject_fail("accept");
	subject_at(28, c3, "accepted");
	close(25);
	close(26);
	close(c1);
	close(c2);
	subject_at(25, connected(SOCK_STREAM, "lsn.sock", 9), "pending 1");
	subject_at(26, connected(SOCK_STREAM, "lsn.sock", 9), "pending 2");
	send(27, "hello", 5, 0);
	send(28, "world", 5, 0);

	subject_at(29, bound(SOCK_SEQPACKET, abs2, (size_t)n2), "abstract listener");
	if (listen(29, 3) != 0)
		subject_fail("listen 29");

	subject_at(30, bound(SOCK_DGRAM, "gone.sock", 10), "gone");
	unlink("gone.sock");
	subject_at(31, bound(SOCK_DGRAM, "gone.sock", 10), "gone again");

	subject_ready();
	subject_wait_term();

	expect_name(20, srv, strlen(srv) + 1, "fd 20");
	struct stat st;
	if (stat(srv, &st) != 0 || !S_ISSOCK(st.st_mode) || (st.st_mode & 0777) != 0604)
		subject_fail("srv.sock: mode %o", st.st_mode);
	expect_msg(20, "one", "srv 1");
	expect_msg(20, "two", "srv 2");
	for (int i = 0; i < 8; i++) {
		ssize_t n = recv(20, big, sizeof(big), MSG_DONTWAIT);
		if (n != 50000 || big[0] != (unsigned char)i)
			subject_fail("srv datagram %d: %zd bytes, first %d", i, n, n > 0 ? big[0] : -1);
	}
	if (send(22, "three", 5, 0) != 5)
		subject_fail("client send: errno %d", errno);
	expect_msg(20, "three", "srv from client");
	expect_name(21, "rel.sock", 9, "fd 21"); /* the kernel keeps path names NUL-terminated */
	expect_msg(21, "rel", "rel");
	expect_name(23, abs1, (size_t)n1, "fd 23");
	expect_msg(23, "abs", "abstract");

	expect_name(24, "lsn.sock", 9, "fd 24");
	fcntl(24, F_SETFL, O_NONBLOCK);
	int a1 = accept(24, NULL, NULL), a2 = accept(24, NULL, NULL);
	if (a1 < 0 || a2 < 0)
		subject_fail("pending connections lost (errno %d)", errno);
	if (accept(24, NULL, NULL) != -1 || errno != EAGAIN)
		subject_fail("more pending connections than dumped");
	send(a1, "p1", 2, 0);
	send(a2, "p2", 2, 0);
	expect_msg(25, "p1", "pending 1 (queue order)");
	expect_msg(26, "p2", "pending 2");

	expect_msg(28, "hello", "accepted pair");
	expect_msg(27, "world", "accepted pair back");
	expect_name(30, "gone.sock", 10, "fd 30");
	send_to("gone.sock", 10, "31", 2);
	expect_msg(31, "31", "gone.sock reaches 31");
	if (recv(30, got, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
		subject_fail("fd 30 got what was sent to gone.sock");
	int c = connected(SOCK_STREAM, "lsn.sock", 9);
	int a = accept(24, NULL, NULL);
	if (a < 0 || send(c, "new", 3, 0) != 3)
		subject_fail("new connection to lsn.sock");
	expect_msg(a, "new", "new connection");
	int s = connected(SOCK_SEQPACKET, abs2, (size_t)n2);
	if (accept(29, NULL, NULL) < 0)
		subject_fail("abstract seqpacket listener");
	close(s);
	subject_pass();
}
