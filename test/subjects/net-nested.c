/*
 * net-nested: a container-like tree with a net namespace nested in its
 * own. The subject (the root) unshares a net namespace (lo up,
 * conf/all/forwarding 0); its child unshares another (lo up, forwarding 1)
 * and gets from the root a veth pair between the two: vr0 10.77.0.1/24 in
 * the root's, vc0 10.77.0.2/24 mtu 1400 in the child's. The child listens
 * on 10.77.0.2:7077; the root and the child each bind a datagram socket to
 * the same abstract unix name (abstract names belong to the namespace, so
 * both can). A grandchild, forked by the child, goes back into the root's
 * namespace (setns) and holds nothing. Before it unshared, the child bound
 * a datagram socket to another abstract name in the root's namespace, and
 * keeps it: a socket of another namespace than its holder's.
 *
 * After SIGTERM: the root connects to 10.77.0.2:7077 over the veth and
 * sends "ping"; the child, told by SIGTERM, accepts it and answers "pong".
 * Each namespace has its own forwarding value and devices (vr0 only in the
 * root's and the grandchild's, vc0 only in the child's), each unix socket
 * gets a datagram sent to the name in its namespace, and the child's socket
 * of the root's namespace the one the root sends to its name there.
 *
 * Each also holds a namespace file of the other's net namespace: the root
 * an fd of the child's (/proc/CHILD/ns/net), the child one of the root's
 * (opened before it unshared); after SIGTERM each still names the other's
 * namespace (same inode as /proc/PID/ns/net).
 *
 * --foreign-sock 1: the child also keeps a UDP socket of a namespace no
 * task is in (made between two unshares), for the refusal at dump;
 * --foreign-sock 2: a namespace file of it instead.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define UNIX_NAME "criu-ts-net-nested"
#define OUTER_NAME "criu-ts-net-nested-outer"
#define PORT 7077

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		subject_fail("`%s` failed", cmd);
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f == NULL || fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f != NULL)
		fclose(f);
	return v;
}

static socklen_t unix_addr_of(struct sockaddr_un *un, const char *name)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path + 1, name, strlen(name));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

static socklen_t unix_addr(struct sockaddr_un *un)
{
	return unix_addr_of(un, UNIX_NAME);
}

static int unix_bound_to(const char *name)
{
	struct sockaddr_un un;
	socklen_t l = unix_addr_of(&un, name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&un, l) != 0)
		return -1;
	return fd;
}

static int unix_bound(void)
{
	return unix_bound_to(UNIX_NAME);
}

/* NULL when a datagram sent to the name in the caller's namespace reaches `fd`. */
static const char *unix_reaches(int fd, const char *tag)
{
	struct sockaddr_un un;
	socklen_t l = unix_addr(&un);
	char buf[16] = { 0 };
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (s < 0 || sendto(s, tag, strlen(tag), 0, (struct sockaddr *)&un, l) != (ssize_t)strlen(tag))
		return "cannot send to the abstract name";
	close(s);
	if (recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT) != (ssize_t)strlen(tag) || strcmp(buf, tag) != 0)
		return "the bound socket did not get the datagram sent to its name";
	return NULL;
}

static const char *grandchild_check(void)
{
	if (if_nametoindex("vr0") == 0)
		return "grandchild: not in the root's namespace (no vr0)";
	if (if_nametoindex("vc0") != 0)
		return "grandchild: vc0 is here";
	return NULL;
}

static int report(int fd, const char *why)
{
	if (why != NULL && write(fd, why, strlen(why)) < 0)
		return 2;
	return why == NULL ? 0 : 1;
}

/* Does namespace file `fd` name the net namespace task `pid` is in? */
static int same_ns(int fd, pid_t pid)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* The child, in a net namespace of its own: serves one "pong" after SIGTERM, then checks. */
static int child_main(pid_t root, int ready, int go, int verdict, int foreign)
{
	int keep = -1;
	int outer = unix_bound_to(OUTER_NAME);
	if (outer < 0)
		return report(verdict, "child: bind the outer name in the root's namespace");
	int rootns = open("/proc/self/ns/net", O_RDONLY);
	if (rootns < 0)
		return report(verdict, "child: open the root's net namespace");
	if (foreign && (unshare(CLONE_NEWNET) != 0 || (keep = foreign == 2 ? open("/proc/self/ns/net", O_RDONLY) : socket(AF_INET, SOCK_DGRAM, 0)) < 0))
		return report(verdict, "child: a socket in a namespace of its own");
	if (unshare(CLONE_NEWNET) != 0)
		return report(verdict, "child: unshare(CLONE_NEWNET) failed");
	if (system("ip link set lo up") != 0)
		return report(verdict, "child: lo up failed");
	FILE *f = fopen("/proc/sys/net/ipv4/conf/all/forwarding", "w");
	if (f == NULL || fputs("1", f) < 0 || fclose(f) != 0)
		return report(verdict, "child: forwarding");
	char c = 'n';
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
		return report(verdict, "child: handshake");
	if (system("ip addr add 10.77.0.2/24 dev vc0 && ip link set vc0 mtu 1400 up") != 0)
		return report(verdict, "child: vc0 setup failed");
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	inet_pton(AF_INET, "10.77.0.2", &sa.sin_addr);
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0)
		return report(verdict, "child: listener on 10.77.0.2");
	int ufd = unix_bound();
	if (ufd < 0)
		return report(verdict, "child: bind the abstract name");
	int gp[2];
	if (pipe(gp) != 0)
		return report(verdict, "child: pipe");
	pid_t g = fork();
	if (g == 0) {
		char ns[64];
		snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)root);
		int nfd = open(ns, O_RDONLY);
		if (nfd < 0 || setns(nfd, CLONE_NEWNET) != 0)
			_exit(report(gp[1], "grandchild: setns into the root's namespace"));
		close(nfd);
		subject_term = 0;
		subject_wait_term();
		_exit(report(gp[1], grandchild_check()));
	}
	close(gp[1]);
	c = 'g';
	if (write(ready, &c, 1) != 1)
		return report(verdict, "child: handshake 2");
	subject_term = 0;
	subject_wait_term();

	int cfd = accept(lfd, NULL, NULL);
	char buf[8] = { 0 };
	if (cfd < 0 || read(cfd, buf, 4) != 4 || strcmp(buf, "ping") != 0 || write(cfd, "pong", 4) != 4)
		return report(verdict, "child: no ping over the veth");
	close(cfd);
	const char *why = NULL;
	if (read_long("/proc/sys/net/ipv4/conf/all/forwarding") != 1)
		why = "child: forwarding is not 1 in its namespace";
	else if (if_nametoindex("vc0") == 0 || if_nametoindex("vr0") != 0)
		why = "child: vc0 missing or vr0 here";
	else
		why = unix_reaches(ufd, "child");
	if (why == NULL && !same_ns(rootns, root))
		why = "child: its fd of the root's net namespace names another";
	if (why == NULL && (recv(outer, buf, sizeof(buf) - 1, MSG_DONTWAIT) != 5 || strncmp(buf, "outer", 5) != 0))
		why = "child: its socket of the root's namespace did not get the datagram sent to its name there";
	kill(g, SIGTERM);
	char gwhy[256] = { 0 };
	ssize_t n = read(gp[0], gwhy, sizeof(gwhy) - 1);
	int st = 0;
	waitpid(g, &st, 0);
	if (why == NULL && (n > 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
		why = n > 0 ? gwhy : "grandchild: failed";
	(void)keep;
	return report(verdict, why);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int foreign = (int)subject_opt_long("foreign-sock", 0);
	if (unshare(CLONE_NEWNET) != 0)
		subject_fail("unshare(CLONE_NEWNET): errno %d", errno);
	sh("ip link set lo up");
	int ready[2], go[2], verdict[2];
	if (pipe(ready) != 0 || pipe(go) != 0 || pipe(verdict) != 0)
		subject_fail("pipe: errno %d", errno);
	pid_t root = getpid();
	pid_t child = fork();
	if (child < 0)
		subject_fail("fork: errno %d", errno);
	if (child == 0) {
		close(verdict[0]);
		_exit(child_main(root, ready[1], go[0], verdict[1], foreign));
	}
	close(verdict[1]);
	char c;
	if (read(ready[0], &c, 1) != 1 || c != 'n')
		subject_fail("the child did not make its namespace");
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ip link add vr0 type veth peer name vc0 netns %d", (int)child);
	sh(cmd);
	sh("ip addr add 10.77.0.1/24 dev vr0 && ip link set vr0 up");
	c = 'g';
	if (write(go[1], &c, 1) != 1 || read(ready[0], &c, 1) != 1 || c != 'g')
		subject_fail("the child did not set up its side");
	int ufd = unix_bound();
	if (ufd < 0)
		subject_fail("bind the abstract name: errno %d", errno);
	char cns[64];
	snprintf(cns, sizeof(cns), "/proc/%d/ns/net", (int)child);
	int childns = open(cns, O_RDONLY);
	if (childns < 0)
		subject_fail("open the child's net namespace: errno %d", errno);

	subject_ready();
	subject_wait_term();

	if (read_long("/proc/sys/net/ipv4/conf/all/forwarding") != 0)
		subject_fail("forwarding is not 0 in the root's namespace");
	if (if_nametoindex("vr0") == 0 || if_nametoindex("vc0") != 0)
		subject_fail("vr0 missing or vc0 in the root's namespace");
	if (!same_ns(childns, child))
		subject_fail("the root's fd of the child's net namespace names another");
	const char *why = unix_reaches(ufd, "root");
	if (why != NULL)
		subject_fail("root: %s", why);
	struct sockaddr_un oa;
	socklen_t ol = unix_addr_of(&oa, OUTER_NAME);
	int os = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (os < 0 || sendto(os, "outer", 5, 0, (struct sockaddr *)&oa, ol) != 5)
		subject_fail("send to the child's name in the root's namespace: errno %d", errno);
	close(os);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	inet_pton(AF_INET, "10.77.0.2", &sa.sin_addr);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		subject_fail("connect to 10.77.0.2:%d over the veth: errno %d", PORT, errno);
	if (write(s, "ping", 4) != 4)
		subject_fail("write ping: errno %d", errno);
	kill(child, SIGTERM);
	char buf[8] = { 0 };
	if (read(s, buf, 4) != 4 || strcmp(buf, "pong") != 0)
		subject_fail("no pong over the veth (got \"%s\")", buf);
	char cwhy[512] = { 0 };
	ssize_t n = read(verdict[0], cwhy, sizeof(cwhy) - 1);
	int st = 0;
	waitpid(child, &st, 0);
	if (n > 0)
		subject_fail("%s", cwhy);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("the child failed (status 0x%x)", st);
	subject_pass();
}
