/*
 * inet-raw: raw IPv4/IPv6 sockets and ICMP ping sockets.
 *   20 raw ICMP on 127.0.0.1, ICMP_FILTER passing echo replies only
 *   21 raw ICMPv6, ICMPV6_FILTER blocking echo requests
 *   22 raw IPv4 protocol UDP: IP_NODEFRAG, IP_FREEBIND, IP_PKTINFO, TTL 32, TOS 0x08
 *   23 raw IPv6 protocol UDP: IPV6_FREEBIND, IPV6_RECVPKTINFO
 *   24 raw IPv4 IPPROTO_RAW (IP_HDRINCL on by itself), connected to 127.0.0.2
 * With --ping 1 (net.ipv4.ping_group_range must hold gid 0):
 *   25 ICMP ping socket connected to 127.0.0.1, one echo answered before the
 *      dump (it has its identifier then)
 *   26 ICMPv6 ping socket, never used
 * After SIGTERM: addresses, identifier and options as they were; 25 pings
 * 127.0.0.1 and gets its reply, and 20 sees that reply (its filter lets it
 * through) but not the request.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_NODEFRAG
#define IP_NODEFRAG 22
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

static int sock(int family, int type, int proto)
{
	int fd = socket(family, type, proto);
	if (fd < 0)
		subject_fail("socket(%d, %d, %d): errno %d", family, type, proto, errno);
	return fd;
}

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

/* An echo request on ping socket fd, and its reply back. */
static void ping(int fd, int seq)
{
	struct icmphdr h = { .type = ICMP_ECHO, .un.echo.sequence = htons(seq) };
	if (send(fd, &h, sizeof(h), 0) != sizeof(h))
		subject_fail("ping send: errno %d", errno);
	struct icmphdr r;
	for (int i = 0; i < 100; i++) {
		if (recv(fd, &r, sizeof(r), MSG_DONTWAIT) == sizeof(r) && r.type == ICMP_ECHOREPLY && r.un.echo.sequence == htons(seq))
			return;
		usleep(10000);
	}
	subject_fail("no echo reply %d on the ping socket", seq);
}

static void drain(int fd)
{
	char b[2048];
	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	long with_ping = subject_opt_long("ping", 0);

	subject_at(20, sock(AF_INET, SOCK_RAW, IPPROTO_ICMP), "20");
	struct sockaddr_in lo = v4("127.0.0.1");
	if (bind(20, (struct sockaddr *)&lo, sizeof(lo)) != 0)
		subject_fail("bind 20: errno %d", errno);
	struct icmp_filter f4 = { .data = ~(1U << ICMP_ECHOREPLY) };
	if (setsockopt(20, SOL_RAW, ICMP_FILTER, &f4, sizeof(f4)) != 0)
		subject_fail("ICMP_FILTER: errno %d", errno);

	subject_at(21, sock(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6), "21");
	struct icmp6_filter f6;
	ICMP6_FILTER_SETPASSALL(&f6);
	ICMP6_FILTER_SETBLOCK(ICMP6_ECHO_REQUEST, &f6);
	if (setsockopt(21, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, sizeof(f6)) != 0)
		subject_fail("ICMP6_FILTER: errno %d", errno);

	subject_at(22, sock(AF_INET, SOCK_RAW, IPPROTO_UDP), "22");
	subject_setint(22, SOL_IP, IP_NODEFRAG, 1, "nodefrag");
	subject_setint(22, SOL_IP, IP_FREEBIND, 1, "freebind");
	subject_setint(22, SOL_IP, IP_PKTINFO, 1, "pktinfo");
	subject_setint(22, SOL_IP, IP_TTL, 32, "ttl");
	subject_setint(22, SOL_IP, IP_TOS, 0x08, "tos");

	subject_at(23, sock(AF_INET6, SOCK_RAW, IPPROTO_UDP), "23");
	subject_setint(23, SOL_IPV6, IPV6_FREEBIND, 1, "v6 freebind");
	subject_setint(23, SOL_IPV6, IPV6_RECVPKTINFO, 1, "v6 recvpktinfo");

	subject_at(24, sock(AF_INET, SOCK_RAW, IPPROTO_RAW), "24");
	struct sockaddr_in lo2 = v4("127.0.0.2");
	if (connect(24, (struct sockaddr *)&lo2, sizeof(lo2)) != 0)
		subject_fail("connect 24: errno %d", errno);

	unsigned short ident = 0;
	if (with_ping) {
		subject_at(25, sock(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), "25");
		if (connect(25, (struct sockaddr *)&lo, sizeof(lo)) != 0)
			subject_fail("connect 25: errno %d", errno);
		ping(25, 1);
		ident = subject_port_of(25);
		subject_at(26, sock(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6), "26");
	}

	subject_ready();
	subject_wait_term();

	struct icmp_filter g4;
	socklen_t l = sizeof(g4);
	if (getsockopt(20, SOL_RAW, ICMP_FILTER, &g4, &l) != 0 || g4.data != f4.data)
		subject_fail("20: ICMP filter %x", g4.data);
	struct sockaddr_in a;
	l = sizeof(a);
	if (getsockname(20, (struct sockaddr *)&a, &l) != 0 || a.sin_addr.s_addr != lo.sin_addr.s_addr)
		subject_fail("20: not bound to 127.0.0.1");
	struct icmp6_filter g6;
	l = sizeof(g6);
	if (getsockopt(21, IPPROTO_ICMPV6, ICMP6_FILTER, &g6, &l) != 0 || memcmp(&g6, &f6, sizeof(f6)) != 0)
		subject_fail("21: ICMPv6 filter differs");
	if (subject_getint(22, SOL_IP, IP_NODEFRAG) != 1 || subject_getint(22, SOL_IP, IP_FREEBIND) != 1 || subject_getint(22, SOL_IP, IP_PKTINFO) != 1 ||
	    subject_getint(22, SOL_IP, IP_TTL) != 32 || subject_getint(22, SOL_IP, IP_TOS) != 0x08)
		subject_fail("22: options");
	if (subject_getint(23, SOL_IPV6, IPV6_FREEBIND) != 1 || subject_getint(23, SOL_IPV6, IPV6_RECVPKTINFO) != 1)
		subject_fail("23: options");
	if (subject_getint(24, SOL_IP, IP_HDRINCL) != 1 || subject_getint(22, SOL_IP, IP_HDRINCL) != 0)
		subject_fail("hdrincl");
	if (subject_getint(20, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_ICMP || subject_getint(24, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_RAW)
		subject_fail("protocols");
	/* 24 is connected: a datagram without an address goes out (hdrincl: it is the whole packet) */
	struct iphdr ip = { .version = 4, .ihl = 5, .ttl = 1, .protocol = 253, .tot_len = htons(sizeof(ip)) };
	ip.daddr = lo2.sin_addr.s_addr;
	if (send(24, &ip, sizeof(ip), 0) != sizeof(ip))
		subject_fail("24 is not connected: errno %d", errno);

	if (with_ping) {
		if (subject_port_of(25) != ident)
			subject_fail("25: identifier %u, was %u", subject_port_of(25), ident);
		if (subject_getint(26, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_ICMPV6)
			subject_fail("26: protocol");
		drain(20);
		ping(25, 2);
		struct {
			struct iphdr ip;
			struct icmphdr icmp;
		} seen;
		int got = 0;
		for (int i = 0; i < 100 && !got; i++) {
			ssize_t n = recv(20, &seen, sizeof(seen), MSG_DONTWAIT);
			if (n == sizeof(seen)) {
				if (seen.icmp.type != ICMP_ECHOREPLY)
					subject_fail("20: its filter let ICMP type %d through", seen.icmp.type);
				got = seen.icmp.un.echo.sequence == htons(2);
			} else
				usleep(10000);
		}
		if (!got)
			subject_fail("20: never saw the echo reply");
	}
	subject_pass();
}
