/*
 * udp: UDP sockets over IPv4 and IPv6.
 *   20 bound to 127.0.0.1, two datagrams "one" and "two" queued (sent by 22)
 *   21 bound to [::1], connected to 23, datagram "v6q" queued (sent by 23)
 *   22 connected to 20 (bound by the connect)
 *   23 bound to [::1], IPV6_V6ONLY
 *   24 unbound IPv4 socket
 *   25 bound to 0.0.0.0, SO_BROADCAST, SO_REUSEADDR, IP_TOS 0x10, IP_TTL 33, SO_RCVBUF 65536
 *   26 connected to 20, shut down for writing
 * After SIGTERM: same addresses, queued datagrams in order, connected peers
 * still filter and reach each other, options kept.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char got[2048];

static int udp(int family, const char *ip, int v6only)
{
	int fd = socket(family, SOCK_DGRAM, 0);
	if (fd < 0)
		subject_fail("socket");
	if (!ip)
		return fd;
	struct sockaddr_storage ss;
	socklen_t l = subject_sockaddr(family, ip, 0, &ss);
	if (family == AF_INET6)
		subject_setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only, "v6only");
	if (bind(fd, (struct sockaddr *)&ss, l) != 0)
		subject_fail("bind %s: errno %d", ip, errno);
	return fd;
}

static void name_of(int fd, struct sockaddr_storage *ss, socklen_t *l)
{
	*l = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, l) != 0)
		subject_fail("getsockname %d", fd);
}

static void connect_to(int fd, int to)
{
	struct sockaddr_storage ss;
	socklen_t l;
	name_of(to, &ss, &l);
	if (connect(fd, (struct sockaddr *)&ss, l) != 0)
		subject_fail("connect %d to %d: errno %d", fd, to, errno);
}

static void expect(int fd, const char *want, const char *what)
{
	ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
	if (n != (ssize_t)strlen(want) || memcmp(got, want, (size_t)n) != 0)
		subject_fail("%s: got %zd bytes (errno %d), want \"%s\"", what, n, errno, want);
}

static void nothing(int fd, const char *what)
{
	if (recv(fd, got, sizeof(got), MSG_DONTWAIT) != -1 || errno != EAGAIN)
		subject_fail("%s: unexpected datagram", what);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, udp(AF_INET, "127.0.0.1", 0), "20");
	subject_at(21, udp(AF_INET6, "::1", 0), "21");
	subject_at(22, udp(AF_INET, NULL, 0), "22");
	subject_at(23, udp(AF_INET6, "::1", 1), "23");
	connect_to(21, 23);
	connect_to(22, 20);
	subject_at(24, udp(AF_INET, NULL, 0), "24");
	subject_at(25, udp(AF_INET, "0.0.0.0", 0), "25");
	subject_setint(25, SOL_SOCKET, SO_BROADCAST, 1, "broadcast");
	subject_setint(25, SOL_SOCKET, SO_REUSEADDR, 1, "reuseaddr");
	subject_setint(25, IPPROTO_IP, IP_TOS, 0x10, "tos");
	subject_setint(25, IPPROTO_IP, IP_TTL, 33, "ttl");
	subject_setint(25, SOL_SOCKET, SO_RCVBUF, 65536, "rcvbuf");
	subject_at(26, udp(AF_INET, NULL, 0), "26");
	connect_to(26, 20);
	if (shutdown(26, SHUT_WR) != 0)
		subject_fail("shutdown 26: errno %d", errno);
	int rcvbuf = subject_getint(25, SOL_SOCKET, SO_RCVBUF);

	if (send(22, "one", 3, 0) != 3 || send(22, "two", 3, 0) != 3)
		subject_fail("send 22: errno %d", errno);
	struct sockaddr_storage s21;
	socklen_t l21;
	name_of(21, &s21, &l21);
	if (sendto(23, "v6q", 3, 0, (struct sockaddr *)&s21, l21) != 3)
		subject_fail("send 23: errno %d", errno);
	usleep(10000);
	struct sockaddr_storage n20, n21, n22, n23, n25, x;
	socklen_t l;
	name_of(20, &n20, &l);
	name_of(21, &n21, &l);
	name_of(22, &n22, &l);
	name_of(23, &n23, &l);
	name_of(25, &n25, &l);

	subject_ready();
	subject_wait_term();

	name_of(20, &x, &l);
	if (memcmp(&x, &n20, sizeof(struct sockaddr_in)) != 0)
		subject_fail("20 moved");
	name_of(21, &x, &l);
	if (memcmp(&x, &n21, sizeof(struct sockaddr_in6)) != 0)
		subject_fail("21 moved");
	name_of(22, &x, &l);
	if (memcmp(&x, &n22, sizeof(struct sockaddr_in)) != 0)
		subject_fail("22 moved");
	name_of(23, &x, &l);
	if (memcmp(&x, &n23, sizeof(struct sockaddr_in6)) != 0)
		subject_fail("23 moved");
	name_of(25, &x, &l);
	if (memcmp(&x, &n25, sizeof(struct sockaddr_in)) != 0)
		subject_fail("25 moved");

	expect(20, "one", "20 queued 1");
	expect(20, "two", "20 queued 2");
	nothing(20, "20 after queue");
	expect(21, "v6q", "21 queued");
	if (send(22, "three", 5, 0) != 5)
		subject_fail("send 22 after: errno %d", errno);
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(20, got, sizeof(got), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	if (n != 5 || memcmp(got, "three", 5) != 0 || memcmp(&from, &n22, sizeof(struct sockaddr_in)) != 0)
		subject_fail("20 from 22: %zd bytes", n);
	/* 21 is connected to 23: 23 reaches it, a stranger does not */
	if (sendto(23, "hi21", 4, 0, (struct sockaddr *)&n21, sizeof(struct sockaddr_in6)) != 4)
		subject_fail("send 23: errno %d", errno);
	expect(21, "hi21", "21 from its peer");
	int stranger = udp(AF_INET6, "::1", 0);
	sendto(stranger, "no", 2, 0, (struct sockaddr *)&n21, sizeof(struct sockaddr_in6));
	usleep(10000);
	nothing(21, "21 from a stranger");
	if (send(21, "back", 4, 0) != 4)
		subject_fail("send 21: errno %d", errno);
	expect(23, "back", "23 from 21");
	/* binding to a plain IPv6 address turns IPV6_V6ONLY on by itself */
	if (subject_getint(23, IPPROTO_IPV6, IPV6_V6ONLY) != 1 || subject_getint(21, IPPROTO_IPV6, IPV6_V6ONLY) != 1)
		subject_fail("v6only");
	if (subject_getint(25, SOL_SOCKET, SO_BROADCAST) != 1 || subject_getint(25, SOL_SOCKET, SO_REUSEADDR) != 1 ||
	    subject_getint(25, IPPROTO_IP, IP_TOS) != 0x10 || subject_getint(25, IPPROTO_IP, IP_TTL) != 33 ||
	    subject_getint(25, SOL_SOCKET, SO_RCVBUF) != rcvbuf)
		subject_fail("25 options: bc %d ra %d tos %d ttl %d rcvbuf %d", subject_getint(25, SOL_SOCKET, SO_BROADCAST),
			     subject_getint(25, SOL_SOCKET, SO_REUSEADDR), subject_getint(25, IPPROTO_IP, IP_TOS), subject_getint(25, IPPROTO_IP, IP_TTL),
			     subject_getint(25, SOL_SOCKET, SO_RCVBUF));
	if (subject_getint(20, SOL_SOCKET, SO_REUSEADDR) != 0 || subject_getint(20, IPPROTO_IP, IP_TTL) != 64)
		subject_fail("20 options changed");
	if (send(26, "x", 1, MSG_NOSIGNAL) != -1 || errno != EPIPE)
		subject_fail("26 is not shut down for writing");
	/* 24 is still a fresh socket: it can bind and talk */
	if (sendto(24, "from24", 6, 0, (struct sockaddr *)&n20, sizeof(struct sockaddr_in)) != 6)
		subject_fail("send 24: errno %d", errno);
	expect(20, "from24", "20 from 24");
	subject_pass();
}
