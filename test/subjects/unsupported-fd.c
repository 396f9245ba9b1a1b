/*
 * unsupported-fd: holds one fd of a kind criu-ts refuses (--kind netlink:
 * a NETLINK_ROUTE socket, --kind packet: an AF_PACKET socket, --kind
 * packet-pipe: the write end of an O_DIRECT pipe) at fd 20.
 * A dump must stop with a refusal naming it and leave us running as before:
 * after SIGTERM fd 20 is still what it was.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	const char *kind = subject_opt("kind", "netlink");
	if (strcmp(kind, "packet-pipe") == 0) {
		/* packet mode shows on the write end only: it is fd 20, the read end 21 */
		int p[2];
		if (pipe2(p, O_DIRECT) != 0 || dup2(p[1], 20) != 20 || dup2(p[0], 21) != 21)
			subject_fail("O_DIRECT pipe: errno %d", errno);
		close(p[0]);
		close(p[1]);
		if (write(20, "ab", 2) != 2 || write(20, "c", 1) != 1)
			subject_fail("O_DIRECT pipe write: errno %d", errno);
		subject_ready();
		subject_wait_term();
		char buf[8];
		if ((fcntl(20, F_GETFL) & O_DIRECT) == 0 || read(21, buf, sizeof(buf)) != 2)
			subject_fail("fd 20/21 are no longer the packet-mode pipe");
		subject_pass();
	}
	int domain = strcmp(kind, "packet") == 0 ? AF_PACKET : AF_NETLINK;
	int fd = domain == AF_PACKET ? socket(AF_PACKET, SOCK_RAW, 0) : socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (fd < 0 || dup2(fd, 20) != 20)
		subject_fail("socket %s: errno %d", kind, errno);
	if (fd != 20)
		close(fd);
	subject_ready();
	subject_wait_term();
	int d = 0;
	socklen_t l = sizeof(d);
	if (getsockopt(20, SOL_SOCKET, SO_DOMAIN, &d, &l) != 0 || d != domain)
		subject_fail("fd 20 is no longer the %s socket", kind);
	subject_pass();
}
