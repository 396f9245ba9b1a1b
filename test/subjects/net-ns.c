/*
 * net-ns: a task in a network namespace of its own (it unshares it itself,
 * before anything else) configured with ip(8) as a container runtime
 * would: lo up, 10.66.0.1/24 and fd66::1/64 on lo, a route 10.99.0.0/16,
 * ipv4 forwarding on, net.unix.max_dgram_qlen 77, lo's
 * ipv4 accept_local on, lo's ipv6 mtu 1280 (below the link's 65536: bringing
 * lo up resets it to the link's, so it must be written after). It holds a TCP listener on 10.66.0.1, a UDP
 * socket bound to [fd66::1] and a unix listener on an abstract name
 * (abstract names belong to the net namespace). After SIGTERM: lo is up, the addresses are
 * there (a new socket binds to each), the route and the sysctls are back,
 * the listener accepts a connection the subject makes to itself, the UDP
 * socket receives a datagram sent to its address, the unix listener
 * accepts a connection made to its name.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define UNIX_NAME "criu-ts-net-ns"

static socklen_t unix_addr(struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, UNIX_NAME, strlen(UNIX_NAME));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(UNIX_NAME));
}

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		subject_fail("`%s` failed", cmd);
}

static int lo_up(void)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	int r = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
	if (s >= 0)
		close(s);
	return r;
}

static void sa4(struct sockaddr_in *sa, const char *ip, int port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &sa->sin_addr);
}

static void sa6(struct sockaddr_in6 *sa, const char *ip, int port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons((uint16_t)port);
	inet_pton(AF_INET6, ip, &sa->sin6_addr);
}

/* A fresh socket binds to the address: it is on a device of this namespace. */
static int can_bind(int family, const char *ip)
{
	int s = socket(family, SOCK_DGRAM, 0);
	int r;
	if (family == AF_INET) {
		struct sockaddr_in sa;
		sa4(&sa, ip, 0);
		r = bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	} else {
		struct sockaddr_in6 sa;
		sa6(&sa, ip, 0);
		r = bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	}
	close(s);
	return r;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (unshare(CLONE_NEWNET) != 0)
		subject_fail("unshare(CLONE_NEWNET): errno %d", errno);
	sh("ip link set lo up && ip addr add 10.66.0.1/24 dev lo && ip -6 addr add fd66::1/64 dev lo nodad"
	   " && ip route add 10.99.0.0/16 dev lo src 10.66.0.1");
	if (subject_write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1") != 0 ||
	    subject_write_file("/proc/sys/net/unix/max_dgram_qlen", "77") != 0 ||
	    subject_write_file("/proc/sys/net/ipv4/conf/lo/accept_local", "1") != 0 ||
	    subject_write_file("/proc/sys/net/ipv6/conf/lo/mtu", "1280") != 0)
		subject_fail("sysctl: errno %d", errno);

	struct sockaddr_in l4;
	sa4(&l4, "10.66.0.1", 0);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&l4, sizeof(l4)) != 0 || listen(lfd, 4) != 0)
		subject_fail("listener on 10.66.0.1: errno %d", errno);
	subject_at(20, lfd, "20");
	struct sockaddr_in6 u6;
	sa6(&u6, "fd66::1", 0);
	int ufd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (ufd < 0 || bind(ufd, (struct sockaddr *)&u6, sizeof(u6)) != 0)
		subject_fail("udp on fd66::1: errno %d", errno);
	subject_at(21, ufd, "21");
	struct sockaddr_un un;
	socklen_t unl = unix_addr(&un);
	int xfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (xfd < 0 || bind(xfd, (struct sockaddr *)&un, unl) != 0 || listen(xfd, 2) != 0)
		subject_fail("unix listener @%s: errno %d", UNIX_NAME, errno);
	subject_at(22, xfd, "22");
	int tport = subject_port_of(20), uport = subject_port_of(21);

	subject_ready();
	subject_wait_term();

	if (!lo_up())
		subject_fail("lo is down");
	if (!can_bind(AF_INET, "10.66.0.1") || !can_bind(AF_INET6, "fd66::1"))
		subject_fail("an address of lo is gone");
	if (system("ip route show 10.99.0.0/16 | grep -q 'dev lo'") != 0)
		subject_fail("the route to 10.99.0.0/16 is gone");
	if (subject_read_long("/proc/sys/net/ipv4/conf/all/forwarding") != 1 || subject_read_long("/proc/sys/net/unix/max_dgram_qlen") != 77 ||
	    subject_read_long("/proc/sys/net/ipv4/conf/lo/accept_local") != 1)
		subject_fail("sysctls: forwarding %ld max_dgram_qlen %ld lo accept_local %ld",
			     subject_read_long("/proc/sys/net/ipv4/conf/all/forwarding"), subject_read_long("/proc/sys/net/unix/max_dgram_qlen"),
			     subject_read_long("/proc/sys/net/ipv4/conf/lo/accept_local"));
	if (subject_read_long("/proc/sys/net/ipv6/conf/lo/mtu") != 1280)
		subject_fail("lo's ipv6 mtu is %ld, not 1280", subject_read_long("/proc/sys/net/ipv6/conf/lo/mtu"));
	if (subject_port_of(20) != tport || subject_port_of(21) != uport)
		subject_fail("ports changed: %d/%d %d/%d", subject_port_of(20), tport, subject_port_of(21), uport);

	struct sockaddr_in c4;
	sa4(&c4, "10.66.0.1", tport);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&c4, sizeof(c4)) != 0)
		subject_fail("connect to 10.66.0.1:%d: errno %d", tport, errno);
	int a = accept(20, NULL, NULL);
	char buf[16] = { 0 };
	if (a < 0 || send(c, "ping", 4, 0) != 4 || recv(a, buf, sizeof(buf), 0) != 4 || memcmp(buf, "ping", 4) != 0)
		subject_fail("tcp exchange on the listener: errno %d", errno);
	close(a);
	close(c);

	struct sockaddr_in6 d6;
	sa6(&d6, "fd66::1", uport);
	int u = socket(AF_INET6, SOCK_DGRAM, 0);
	memset(buf, 0, sizeof(buf));
	if (sendto(u, "dgram", 5, 0, (struct sockaddr *)&d6, sizeof(d6)) != 5 || recv(21, buf, sizeof(buf), 0) != 5 ||
	    memcmp(buf, "dgram", 5) != 0)
		subject_fail("udp datagram to [fd66::1]:%d: errno %d", uport, errno);
	close(u);

	int x = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(x, (struct sockaddr *)&un, unl) != 0)
		subject_fail("connect to @%s: errno %d", UNIX_NAME, errno);
	int xa = accept(22, NULL, NULL);
	if (xa < 0)
		subject_fail("accept on the unix listener: errno %d", errno);
	close(xa);
	close(x);
	subject_pass();
}
