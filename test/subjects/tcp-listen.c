/*
 * tcp-listen: TCP sockets that are not connections.
 *   20 listener on 127.0.0.1 (kernel-chosen port), backlog 5, TCP_NODELAY, keepidle 100
 *   21 listener on [::1] (kernel-chosen port), backlog 9, IPV6_V6ONLY, SO_REUSEADDR
 *   22 bound to 127.0.0.1, not listening
 *   23 unbound IPv4 socket
 *   24 dual-stack listener on [::] (v6only off), SO_REUSEPORT, SO_RCVBUF 100000, O_NONBLOCK
 * After SIGTERM: the same ports and options; each listener accepts a
 * connection the subject makes to itself and data flows both ways; 22 can
 * still listen on its port, 23 can connect.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bound4(const char *ip)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, ip, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		subject_fail("bind %s: errno %d", ip, errno);
	return fd;
}

static int bound6(const char *ip, int v6only)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET6, ip, &sa.sin6_addr);
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		subject_fail("socket6");
	subject_setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only, "v6only");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		subject_fail("bind %s: errno %d", ip, errno);
	return fd;
}

/* connect to ip:port, accept on lfd, send both ways */
static void talk(int lfd, int family, const char *ip, int port, int cfd)
{
	struct sockaddr_storage ss;
	socklen_t l = subject_sockaddr(family, ip, port, &ss);
	int c = cfd >= 0 ? cfd : socket(family, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&ss, l) != 0)
		subject_fail("connect %s port %d: errno %d", ip, port, errno);
	int fl = fcntl(lfd, F_GETFL);
	fcntl(lfd, F_SETFL, fl & ~O_NONBLOCK);
	int a = accept(lfd, NULL, NULL);
	fcntl(lfd, F_SETFL, fl);
	if (a < 0)
		subject_fail("accept on %d: errno %d", lfd, errno);
	char buf[16] = { 0 };
	if (send(c, "ping", 4, 0) != 4 || recv(a, buf, sizeof(buf), 0) != 4 || memcmp(buf, "ping", 4) != 0)
		subject_fail("ping on %s port %d", ip, port);
	if (send(a, "pong", 4, 0) != 4 || recv(c, buf, sizeof(buf), 0) != 4 || memcmp(buf, "pong", 4) != 0)
		subject_fail("pong on %s port %d", ip, port);
	/* the client closes first: TIME_WAIT stays on its port, not on the listener's */
	close(c);
	close(a);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, bound4("127.0.0.1"), "20");
	subject_setint(20, IPPROTO_TCP, TCP_NODELAY, 1, "nodelay");
	subject_setint(20, IPPROTO_TCP, TCP_KEEPIDLE, 100, "keepidle");
	if (listen(20, 5) != 0)
		subject_fail("listen 20");
	int s21 = bound6("::1", 1);
	subject_setint(s21, SOL_SOCKET, SO_REUSEADDR, 1, "reuseaddr");
	subject_at(21, s21, "21");
	if (listen(21, 9) != 0)
		subject_fail("listen 21");
	subject_at(22, bound4("127.0.0.1"), "22");
	subject_at(23, socket(AF_INET, SOCK_STREAM, 0), "23");
	int s24 = socket(AF_INET6, SOCK_STREAM, 0);
	subject_setint(s24, SOL_SOCKET, SO_REUSEPORT, 1, "reuseport");
	subject_setint(s24, SOL_SOCKET, SO_RCVBUF, 100000, "rcvbuf");
	close(s24);
	s24 = bound6("::", 0);
	subject_setint(s24, SOL_SOCKET, SO_REUSEPORT, 1, "reuseport");
	subject_setint(s24, SOL_SOCKET, SO_RCVBUF, 100000, "rcvbuf");
	subject_at(24, s24, "24");
	if (listen(24, 3) != 0)
		subject_fail("listen 24");
	fcntl(24, F_SETFL, O_NONBLOCK);
	int rcvbuf = subject_getint(24, SOL_SOCKET, SO_RCVBUF);
	int p20 = subject_port_of(20), p21 = subject_port_of(21), p22 = subject_port_of(22), p24 = subject_port_of(24);
	/* one exchange before, so a dump sees listeners that have served */
	talk(20, AF_INET, "127.0.0.1", p20, -1);

	subject_ready();
	subject_wait_term();

	if (subject_port_of(20) != p20 || subject_port_of(21) != p21 || subject_port_of(22) != p22 || subject_port_of(24) != p24)
		subject_fail("ports changed: %d/%d %d/%d %d/%d %d/%d", subject_port_of(20), p20, subject_port_of(21), p21, subject_port_of(22), p22, subject_port_of(24), p24);
	if (!subject_getint(20, SOL_SOCKET, SO_ACCEPTCONN) || !subject_getint(21, SOL_SOCKET, SO_ACCEPTCONN) || !subject_getint(24, SOL_SOCKET, SO_ACCEPTCONN))
		subject_fail("a listener does not listen");
	if (subject_getint(22, SOL_SOCKET, SO_ACCEPTCONN) || subject_getint(23, SOL_SOCKET, SO_ACCEPTCONN))
		subject_fail("22 or 23 listens");
	if (subject_getint(20, IPPROTO_TCP, TCP_NODELAY) == 0 || subject_getint(20, IPPROTO_TCP, TCP_KEEPIDLE) != 100)
		subject_fail("20: nodelay %d keepidle %d", subject_getint(20, IPPROTO_TCP, TCP_NODELAY), subject_getint(20, IPPROTO_TCP, TCP_KEEPIDLE));
	if (subject_getint(20, SOL_SOCKET, SO_REUSEADDR) != 0 || subject_getint(21, SOL_SOCKET, SO_REUSEADDR) == 0)
		subject_fail("SO_REUSEADDR: 20 %d 21 %d", subject_getint(20, SOL_SOCKET, SO_REUSEADDR), subject_getint(21, SOL_SOCKET, SO_REUSEADDR));
	if (subject_getint(21, IPPROTO_IPV6, IPV6_V6ONLY) != 1 || subject_getint(24, IPPROTO_IPV6, IPV6_V6ONLY) != 0)
		subject_fail("IPV6_V6ONLY: 21 %d 24 %d", subject_getint(21, IPPROTO_IPV6, IPV6_V6ONLY), subject_getint(24, IPPROTO_IPV6, IPV6_V6ONLY));
	if (subject_getint(24, SOL_SOCKET, SO_REUSEPORT) != 1 || subject_getint(24, SOL_SOCKET, SO_RCVBUF) != rcvbuf)
		subject_fail("24: reuseport %d rcvbuf %d (want %d)", subject_getint(24, SOL_SOCKET, SO_REUSEPORT), subject_getint(24, SOL_SOCKET, SO_RCVBUF), rcvbuf);
	if (!(fcntl(24, F_GETFL) & O_NONBLOCK))
		subject_fail("24 lost O_NONBLOCK");
	talk(20, AF_INET, "127.0.0.1", p20, -1);
	talk(21, AF_INET6, "::1", p21, -1);
	talk(24, AF_INET6, "::1", p24, -1);
	talk(24, AF_INET, "127.0.0.1", p24, -1); /* dual stack */
	if (listen(22, 1) != 0)
		subject_fail("listen on 22: errno %d", errno);
	talk(22, AF_INET, "127.0.0.1", p22, 23);
	subject_pass();
}
