/*
 * netlink-sock: netlink sockets.
 *   20 NETLINK_ROUTE, port id picked by the kernel, listening to group 13
 *      (DECnet addresses, which nothing sends any more: a busy group such as
 *      links would queue messages, and a dump refuses those) and to group 33
 *      (bridge VLANs, past the first 32, by NETLINK_ADD_MEMBERSHIP)
 *   21 NETLINK_ROUTE, never bound
 *   22 NETLINK_GENERIC bound to port id pid + 1000000
 *   23 NETLINK_USERSOCK bound to port id pid + 2000000, SO_PASSCRED on
 *   24 NETLINK_USERSOCK connected to 23
 * With --queued 1, 23 has a message from 24 waiting: a dump must refuse it.
 * After SIGTERM: port ids, groups and peer as they were; 20 asks the kernel
 * for its links and gets an answer; 24 reaches 23.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define QUIET_GROUPS (1U << 12)

static int sock(int proto)
{
	int fd = socket(AF_NETLINK, SOCK_RAW, proto);
	if (fd < 0)
		subject_fail("socket(AF_NETLINK, %d): errno %d", proto, errno);
	return fd;
}

static void bind_nl(int fd, unsigned pid, unsigned groups)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = pid, .nl_groups = groups };
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		subject_fail("bind %d: errno %d", fd, errno);
}

static struct sockaddr_nl name_of(int fd)
{
	struct sockaddr_nl a;
	socklen_t l = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &l) != 0)
		subject_fail("getsockname %d: errno %d", fd, errno);
	return a;
}

static void say(int from, const char *text)
{
	char buf[NLMSG_SPACE(16)];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	memset(buf, 0, sizeof(buf));
	h->nlmsg_len = NLMSG_LENGTH(strlen(text) + 1);
	h->nlmsg_type = 0x1234;
	strcpy(NLMSG_DATA(h), text);
	if (send(from, buf, h->nlmsg_len, 0) < 0)
		subject_fail("send %d: errno %d", from, errno);
}

static void hear(int fd, const char *text)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (n <= 0 || h->nlmsg_type != 0x1234 || strcmp(NLMSG_DATA(h), text) != 0)
		subject_fail("%d: no \"%s\" (%zd, errno %d)", fd, text, n, errno);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unsigned pid = (unsigned)getpid();

	subject_at(20, sock(NETLINK_ROUTE), "20");
	bind_nl(20, 0, QUIET_GROUPS);
	int g33 = 33;
	if (setsockopt(20, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g33, sizeof(g33)) != 0)
		subject_fail("group 33: errno %d", errno);
	subject_at(21, sock(NETLINK_ROUTE), "21");
	subject_at(22, sock(NETLINK_GENERIC), "22");
	bind_nl(22, pid + 1000000, 0);
	subject_at(23, sock(NETLINK_USERSOCK), "23");
	bind_nl(23, pid + 2000000, 0);
	int one = 1;
	setsockopt(23, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	subject_at(24, sock(NETLINK_USERSOCK), "24");
	struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = pid + 2000000 };
	if (connect(24, (struct sockaddr *)&to, sizeof(to)) != 0)
		subject_fail("connect 24: errno %d", errno);
	say(24, "before");
	hear(23, "before");
	long queued = subject_opt_long("queued", 0);
	if (queued)
		say(24, "left");
	unsigned port20 = name_of(20).nl_pid;
	unsigned port24 = name_of(24).nl_pid;

	subject_ready();
	subject_wait_term();
	if (queued)
		hear(23, "left");

	struct sockaddr_nl a = name_of(20);
	if (a.nl_pid != port20 || a.nl_groups != QUIET_GROUPS)
		subject_fail("20: port id %u groups %x, was %u", a.nl_pid, a.nl_groups, port20);
	unsigned groups[4] = { 0 };
	socklen_t gl = sizeof(groups);
	if (getsockopt(20, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &gl) != 0 || groups[0] != QUIET_GROUPS || groups[1] != 1)
		subject_fail("20: groups %x %x", groups[0], groups[1]);
	if (name_of(21).nl_pid != 0 || name_of(22).nl_pid != pid + 1000000 || name_of(23).nl_pid != pid + 2000000 ||
	    name_of(24).nl_pid != port24)
		subject_fail("port ids");
	int cred = 0;
	socklen_t cl = sizeof(cred);
	if (getsockopt(23, SOL_SOCKET, SO_PASSCRED, &cred, &cl) != 0 || cred != 1)
		subject_fail("23: SO_PASSCRED lost");
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 7 },
		  .g = { .rtgen_family = AF_UNSPEC } };
	if (send(20, &req, sizeof(req), 0) != sizeof(req))
		subject_fail("20: RTM_GETLINK: errno %d", errno);
	char buf[8192];
	ssize_t n = recv(20, buf, sizeof(buf), 0);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (n <= 0 || h->nlmsg_seq != 7 || h->nlmsg_pid != port20)
		subject_fail("20: no answer from the kernel (%zd)", n);
	say(24, "after");
	usleep(10000);
	hear(23, "after");
	subject_pass();
}
