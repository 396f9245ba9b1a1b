/*
 * tcp-conn: established TCP connections (dumped with --tcp-established).
 *   20 listener on 127.0.0.1; 21 a client connected to it, accepted as 22
 *   21 -> 22: as many bytes as the socket buffers take (22 does not read:
 *      part is queued at 22, part sent and unacknowledged or never sent at 21)
 *   22 -> 21: "to-client" unread
 *   23 client connected over [::1] to a listener that is closed since, accepted as 24, TCP_NODELAY on 23
 *   SO_REUSEADDR on both clients (21, 23)
 * After SIGTERM: every byte arrives in order, both connections carry new
 * data both ways, the listener accepts a new connection.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned char buf[1 << 16];

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 7 + 3) & 0xff);
}

/* a listener on ip, a client connected to it, the accepted socket */
static void pair(int family, const char *ip, int *lfd, int *cfd, int *afd)
{
	struct sockaddr_storage ss;
	socklen_t l = subject_sockaddr(family, ip, 0, &ss);
	*lfd = socket(family, SOCK_STREAM, 0);
	if (*lfd < 0 || bind(*lfd, (struct sockaddr *)&ss, l) != 0 || listen(*lfd, 4) != 0)
		subject_fail("listener %s: errno %d", ip, errno);
	if (getsockname(*lfd, (struct sockaddr *)&ss, &l) != 0)
		subject_fail("getsockname");
	*cfd = socket(family, SOCK_STREAM, 0);
	int one = 1;
	/* kept through the dump: TCP repair mode overrides it while on, and clears it when turned off */
	if (*cfd >= 0)
		setsockopt(*cfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (*cfd < 0 || connect(*cfd, (struct sockaddr *)&ss, l) != 0)
		subject_fail("connect %s: errno %d", ip, errno);
	*afd = accept(*lfd, NULL, NULL);
	if (*afd < 0)
		subject_fail("accept: errno %d", errno);
}

static void exchange(int a, int b, const char *what)
{
	unsigned char x[8];
	if (send(a, "ping", 4, 0) != 4)
		subject_fail("%s: send: errno %d", what, errno);
	subject_readn(b, x, 4, what);
	if (memcmp(x, "ping", 4) != 0)
		subject_fail("%s: ping garbled", what);
	if (send(b, "pong", 4, 0) != 4)
		subject_fail("%s: send back: errno %d", what, errno);
	subject_readn(a, x, 4, what);
	if (memcmp(x, "pong", 4) != 0)
		subject_fail("%s: pong garbled", what);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int l, c, a;
	pair(AF_INET, "127.0.0.1", &l, &c, &a);
	subject_at(20, l, "20");
	subject_at(21, c, "21");
	subject_at(22, a, "22");
	pair(AF_INET6, "::1", &l, &c, &a);
	close(l);
	subject_at(23, c, "23");
	subject_at(24, a, "24");
	int one = 1;
	setsockopt(23, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	/* fill 21 -> 22 until the buffers are full */
	fcntl(21, F_SETFL, O_NONBLOCK);
	size_t sent = 0;
	for (;;) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern(sent + i);
		ssize_t n = send(21, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			subject_fail("fill: errno %d", errno);
		}
		sent += (size_t)n;
	}
	fcntl(21, F_SETFL, 0);
	if (send(22, "to-client", 9, 0) != 9)
		subject_fail("send 22");
	usleep(50000);
	subject_log("queued %zu bytes 21 -> 22", sent);

	subject_ready();
	subject_wait_term();

	unsigned char tc[9];
	subject_readn(21, tc, 9, "21 reads to-client");
	if (memcmp(tc, "to-client", 9) != 0)
		subject_fail("to-client garbled");
	for (size_t off = 0; off < sent;) {
		size_t n = sent - off < sizeof(buf) ? sent - off : sizeof(buf);
		subject_readn(22, buf, n, "22 reads the stream");
		for (size_t i = 0; i < n; i++)
			if (buf[i] != pattern(off + i))
				subject_fail("stream byte %zu: %d, want %d", off + i, buf[i], pattern(off + i));
		off += n;
	}
	exchange(21, 22, "v4 connection");
	exchange(23, 24, "v6 connection");
	int nd = 0;
	socklen_t ndl = sizeof(nd);
	getsockopt(23, IPPROTO_TCP, TCP_NODELAY, &nd, &ndl);
	if (!nd)
		subject_fail("23 lost TCP_NODELAY");
	for (int fd = 21; fd <= 23; fd += 2) {
		int ra = 0;
		socklen_t ral = sizeof(ra);
		if (getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &ra, &ral) != 0 || ra != 1)
			subject_fail("%d lost SO_REUSEADDR", fd);
	}
	/* the listener still accepts */
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	getsockname(20, (struct sockaddr *)&sa, &sl);
	int n = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(n, (struct sockaddr *)&sa, sl) != 0)
		subject_fail("new connection: errno %d", errno);
	int na = accept(20, NULL, NULL);
	if (na < 0)
		subject_fail("accept new: errno %d", errno);
	exchange(n, na, "new connection");
	subject_pass();
}
