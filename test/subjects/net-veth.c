/*
 * net-veth: a task in a network namespace of its own (it unshares it
 * itself) with devices beyond loopback.
 *
 * Default: it makes them itself, as a runtime's network setup would: a veth
 * pair va (ifindex 20, 02:00:00:00:00:0a, mtu 1400, promisc) / vb (21,
 * 02:00:00:00:00:0b) with vb a port of bridge br0 (22, 02:00:00:00:00:0c),
 * all up, 10.89.0.1/24 on va and 10.89.0.2/24 on br0, and a TCP listener
 * on 10.89.0.1; fe80::a/64 on va with a TCP listener and a UDP socket
 * bound to [fe80::a%va] (a link-local address is tied to its interface).
 * After SIGTERM: every device is back with its ifindex, address, mtu,
 * flags and master, the addresses bind, the listeners accept (the
 * link-local one still on va), the UDP socket gets a datagram.
 *
 * --outside 1: the test gives it its network from outside (a veth whose
 * other end is in the test's namespace, named eth0 inside) after it is
 * ready; it serves "hello" on every connection to port --port until
 * SIGTERM, then checks eth0 is there and up.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		subject_fail("`%s` failed", cmd);
}

static int ifreq_of(const char *name, unsigned long req, struct ifreq *ifr)
{
	memset(ifr, 0, sizeof(*ifr));
	strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	int r = s >= 0 ? ioctl(s, req, ifr) : -1;
	if (s >= 0)
		close(s);
	return r;
}

static void check_dev(const char *name, int index, const char *mac, int mtu, int flags)
{
	struct ifreq ifr;
	if (ifreq_of(name, SIOCGIFINDEX, &ifr) != 0)
		subject_fail("device %s is gone", name);
	if (index > 0 && ifr.ifr_ifindex != index)
		subject_fail("%s: ifindex %d, was %d", name, ifr.ifr_ifindex, index);
	if (mac != NULL) {
		char got[18];
		ifreq_of(name, SIOCGIFHWADDR, &ifr);
		unsigned char *m = (unsigned char *)ifr.ifr_hwaddr.sa_data;
		snprintf(got, sizeof(got), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
		if (strcmp(got, mac) != 0)
			subject_fail("%s: address %s, was %s", name, got, mac);
	}
	if (mtu > 0) {
		ifreq_of(name, SIOCGIFMTU, &ifr);
		if (ifr.ifr_mtu != mtu)
			subject_fail("%s: mtu %d, was %d", name, ifr.ifr_mtu, mtu);
	}
	ifreq_of(name, SIOCGIFFLAGS, &ifr);
	if ((ifr.ifr_flags & flags) != flags)
		subject_fail("%s: flags 0x%x lack 0x%x", name, ifr.ifr_flags, flags);
}

static int listener(const char *ip, int port)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &sa.sin_addr);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 8) != 0)
		subject_fail("listener on %s:%d: errno %d", ip, port, errno);
	return fd;
}

/* A socket bound to [fe80::a%va]:0. */
static int link_local(int type)
{
	struct sockaddr_in6 sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "fe80::a", &sa.sin6_addr);
	sa.sin6_scope_id = if_nametoindex("va");
	int fd = socket(AF_INET6, type, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || (type == SOCK_STREAM && listen(fd, 4) != 0))
		subject_fail("bind to [fe80::a%%va] (type %d): errno %d", type, errno);
	return fd;
}

/* Still on [fe80::a%va] (scope: va's ifindex), and reachable there. */
static void check_link_local(int tfd, int ufd)
{
	struct sockaddr_in6 sa;
	socklen_t sl = sizeof(sa);
	char ip[64];
	for (int i = 0; i < 2; i++) {
		int fd = i == 0 ? tfd : ufd;
		sl = sizeof(sa);
		if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
			subject_fail("getsockname %d: errno %d", fd, errno);
		inet_ntop(AF_INET6, &sa.sin6_addr, ip, sizeof(ip));
		if (strcmp(ip, "fe80::a") != 0 || sa.sin6_scope_id != 20)
			subject_fail("fd %d bound to [%s%%%u], was [fe80::a%%20]", fd, ip, sa.sin6_scope_id);
	}
	sl = sizeof(sa);
	getsockname(tfd, (struct sockaddr *)&sa, &sl);
	int c = socket(AF_INET6, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		subject_fail("connect to [fe80::a%%va]:%d: errno %d", ntohs(sa.sin6_port), errno);
	int a = accept(tfd, NULL, NULL);
	if (a < 0)
		subject_fail("accept on [fe80::a%%va]: errno %d", errno);
	close(a);
	close(c);
	sl = sizeof(sa);
	getsockname(ufd, (struct sockaddr *)&sa, &sl);
	int u = socket(AF_INET6, SOCK_DGRAM, 0);
	char buf[8] = { 0 };
	if (sendto(u, "ll", 2, 0, (struct sockaddr *)&sa, sizeof(sa)) != 2 || recv(ufd, buf, sizeof(buf), 0) != 2)
		subject_fail("datagram to [fe80::a%%va]:%d: errno %d", ntohs(sa.sin6_port), errno);
	close(u);
}

static void outside(int port)
{
	sh("ip link set lo up");
	int l = listener("0.0.0.0", port);
	subject_ready();
	/* Serve until SIGTERM: poll wakes with EINTR when it comes. */
	while (!subject_term) {
		struct pollfd p = { .fd = l, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		int c = accept(l, NULL, NULL);
		if (c < 0)
			continue;
		if (send(c, "hello\n", 6, MSG_NOSIGNAL) != 6)
			subject_log("send: errno %d", errno);
		close(c);
	}
	check_dev("eth0", 0, NULL, 0, IFF_UP);
	subject_pass();
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (unshare(CLONE_NEWNET) != 0)
		subject_fail("unshare(CLONE_NEWNET): errno %d", errno);
	if (subject_opt_long("outside", 0) != 0)
		outside((int)subject_opt_long("port", 7071));

	sh("ip link set lo up"
	   " && ip link add va index 20 address 02:00:00:00:00:0a mtu 1400 type veth peer name vb index 21 address 02:00:00:00:00:0b"
	   " && ip link add br0 index 22 address 02:00:00:00:00:0c type bridge"
	   " && ip link set vb master br0 && ip link set va promisc on"
	   " && ip link set va up && ip link set vb up && ip link set br0 up"
	   " && ip addr add 10.89.0.1/24 dev va && ip addr add 10.89.0.2/24 dev br0"
	   " && ip -6 addr add fe80::a/64 dev va nodad");
	int l = listener("10.89.0.1", 0);
	subject_at(20, l, "20");
	subject_at(21, link_local(SOCK_STREAM), "21");
	subject_at(22, link_local(SOCK_DGRAM), "22");
	subject_ready();
	subject_wait_term();

	check_dev("va", 20, "02:00:00:00:00:0a", 1400, IFF_UP | IFF_PROMISC);
	check_dev("vb", 21, "02:00:00:00:00:0b", 1500, IFF_UP);
	check_dev("br0", 22, "02:00:00:00:00:0c", 0, IFF_UP);
	if (system("ip -o link show dev vb | grep -q 'master br0'") != 0)
		subject_fail("vb is no longer a port of br0");
	if (system("ip -o addr show dev va | grep -q 'inet 10.89.0.1/24' && ip -o addr show dev br0 | grep -q 'inet 10.89.0.2/24'") != 0)
		subject_fail("an address is gone");
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	if (getsockname(20, (struct sockaddr *)&sa, &sl) != 0)
		subject_fail("getsockname: errno %d", errno);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		subject_fail("connect to 10.89.0.1:%d: errno %d", ntohs(sa.sin_port), errno);
	int a = accept(20, NULL, NULL);
	if (a < 0)
		subject_fail("accept: errno %d", errno);
	close(a);
	close(c);
	check_link_local(21, 22);
	subject_pass();
}
