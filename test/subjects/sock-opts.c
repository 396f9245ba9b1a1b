/*
 * sock-opts: generic socket options CRIU's sk_opts_entry carries beyond the
 * plain integers.
 *   20 UDP on 127.0.0.1, a classic BPF filter (drops datagrams of fewer than
 *      4 bytes); "q" was queued before the filter went on, so it must come
 *      back although the filter would drop it now
 *   21 TCP, unbound, SO_LINGER on for 7 s
 *   22 UDP on 127.0.0.1 bound to device "lo" (SO_BINDTODEVICE)
 *   23, 24 TCP listeners sharing one port in a SO_REUSEPORT group; 23 turned
 *      SO_REUSEPORT off afterwards (the port is still shared)
 *   25, 26 a unix datagram pair, 25 with a one-instruction filter
 * With --lock 1, 20's filter is also locked (SO_LOCK_FILTER): a dump must
 * refuse it.
 * After SIGTERM: the same filters (SO_GET_FILTER), still applied; linger,
 * device, port sharing and the REUSEPORT flags as they were.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif

static struct sock_filter udp_min4[] = {
	/* A = skb length (UDP header + payload); accept when >= 8 + 4 */
	{ BPF_LD | BPF_W | BPF_LEN, 0, 0, 0 },
	{ BPF_JMP | BPF_JGE | BPF_K, 0, 1, 12 },
	{ BPF_RET | BPF_K, 0, 0, 0xffff },
	{ BPF_RET | BPF_K, 0, 0, 0 },
};
static struct sock_filter accept_all[] = { { BPF_RET | BPF_K, 0, 0, 0xffffffff } };

static void attach(int fd, struct sock_filter *f, unsigned short n)
{
	struct sock_fprog p = { .len = n, .filter = f };
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p)) != 0)
		subject_fail("SO_ATTACH_FILTER on %d: errno %d", fd, errno);
}

static void same_filter(int fd, const struct sock_filter *want, unsigned n)
{
	struct sock_filter got[16];
	socklen_t len = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &len) != 0 || len != n)
		subject_fail("%d: filter of %u blocks, want %u (errno %d)", fd, len, n, errno);
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, got, &len) != 0 || memcmp(got, want, n * sizeof(*want)) != 0)
		subject_fail("%d: filter differs", fd);
}

static int udp_lo(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		subject_fail("udp: errno %d", errno);
	return fd;
}

static void to(int from, int fd, const char *msg)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	if (sendto(from, msg, strlen(msg), 0, (struct sockaddr *)&a, l) != (ssize_t)strlen(msg))
		subject_fail("sendto: errno %d", errno);
}

static void expect(int fd, const char *want, const char *what)
{
	char got[64];
	ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
	if (n != (ssize_t)strlen(want) || memcmp(got, want, (size_t)n) != 0)
		subject_fail("%s: got %zd bytes (errno %d), want \"%s\"", what, n, errno, want);
}

static int listener(unsigned short port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	subject_setint(fd, SOL_SOCKET, SO_REUSEPORT, 1, "reuseport");
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0)
		subject_fail("listener on %u: errno %d", port, errno);
	return fd;
}

static unsigned short port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	return ntohs(a.sin_port);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	long lock = subject_opt_long("lock", 0);
	int out = socket(AF_INET, SOCK_DGRAM, 0);
	if (out < 0)
		subject_fail("socket");

	subject_at(20, udp_lo(), "20");
	to(out, 20, "q");
	usleep(10000);
	attach(20, udp_min4, 4);
	if (lock)
		subject_setint(20, SOL_SOCKET, SO_LOCK_FILTER, 1, "lock filter");

	subject_at(21, socket(AF_INET, SOCK_STREAM, 0), "21");
	struct linger lg = { .l_onoff = 1, .l_linger = 7 };
	if (setsockopt(21, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0)
		subject_fail("SO_LINGER: errno %d", errno);

	subject_at(22, udp_lo(), "22");
	if (setsockopt(22, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) != 0)
		subject_fail("SO_BINDTODEVICE: errno %d", errno);

	subject_at(23, listener(0), "23");
	unsigned short port = port_of(23);
	subject_at(24, listener(port), "24");
	subject_setint(23, SOL_SOCKET, SO_REUSEPORT, 0, "reuseport off");

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0)
		subject_fail("socketpair");
	subject_at(25, sv[0], "25");
	subject_at(26, sv[1], "26");
	attach(25, accept_all, 1);

	subject_ready();
	subject_wait_term();

	same_filter(20, udp_min4, 4);
	same_filter(25, accept_all, 1);
	same_filter(26, NULL, 0);
	expect(20, "q", "20: datagram queued before its filter");
	to(out, 20, "ab");
	to(out, 20, "abcd");
	usleep(10000);
	expect(20, "abcd", "20: the filter drops short datagrams");

	struct linger got;
	socklen_t gl = sizeof(got);
	if (getsockopt(21, SOL_SOCKET, SO_LINGER, &got, &gl) != 0 || got.l_onoff != 1 || got.l_linger != 7)
		subject_fail("21: linger %d/%d", got.l_onoff, got.l_linger);

	char dev[16] = "";
	socklen_t dl = sizeof(dev);
	if (getsockopt(22, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) != 0 || strcmp(dev, "lo") != 0)
		subject_fail("22: bound to \"%s\"", dev);

	if (port_of(24) != port || port_of(23) != port)
		subject_fail("23/24 left port %u", port);
	if (subject_getint(23, SOL_SOCKET, SO_REUSEPORT) != 0 || subject_getint(24, SOL_SOCKET, SO_REUSEPORT) != 1)
		subject_fail("reuseport flags %d %d", subject_getint(23, SOL_SOCKET, SO_REUSEPORT), subject_getint(24, SOL_SOCKET, SO_REUSEPORT));
	if (subject_getint(23, SOL_SOCKET, SO_REUSEADDR) != 0 || subject_getint(24, SOL_SOCKET, SO_REUSEADDR) != 0)
		subject_fail("reuseaddr turned on");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0)
		subject_fail("connect to the shared port: errno %d", errno);
	if (send(26, "u", 1, 0) != 1)
		subject_fail("send 26: errno %d", errno);
	expect(25, "u", "25 from 26");
	subject_pass();
}
