/*
 * tcp-close: TCP connections restored closed (--tcp-close) and a listener
 * with a connection not accepted yet (--skip-in-flight).
 *   --mode close (only after a restore with --tcp-close; test/kinds/files/inet-tcp-close.test.ts):
 *     20 listener on 127.0.0.1, 21 a client connected to it
 *     with bytes queued both ways, 22 its accepted end. After SIGTERM: 21
 *     and 22 are closed (TCP_CLOSE, recv gives end of file, poll says
 *     HUP), and the listener accepts a new connection.
 *   --mode in-flight: 20 a non-blocking listener, 21 a client it has not
 *     accepted. After SIGTERM: 21 is closed by us, and a new connection is
 *     accepted and carries data.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in addr;

static int client(void)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		subject_fail("connect: errno %d", errno);
	return c;
}

static void closed(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0 || ti.tcpi_state != TCP_CLOSE)
		subject_fail("fd %d: state %d, not CLOSE", fd, ti.tcpi_state);
	char b[4];
	ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	if (r != 0)
		subject_fail("fd %d: recv %zd errno %d, want end of file", fd, r, errno);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLHUP))
		subject_fail("fd %d: poll %#x, want HUP", fd, p.revents);
}

static void fresh_connection(int l)
{
	int c = client();
	struct pollfd p = { .fd = l, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		subject_fail("the listener sees no new connection");
	int a = accept(l, NULL, NULL);
	if (a < 0)
		subject_fail("accept: errno %d", errno);
	char b[4];
	if (send(c, "ping", 4, 0) != 4 || recv(a, b, 4, MSG_WAITALL) != 4 || memcmp(b, "ping", 4) != 0)
		subject_fail("the new connection carries nothing");
	close(a);
	close(c);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	const char *mode = subject_opt("mode", "close");
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t al = sizeof(addr);
	if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(l, 4) != 0 ||
	    getsockname(l, (struct sockaddr *)&addr, &al) != 0)
		subject_fail("listener: errno %d", errno);
	subject_at(20, l, "20");
	if (strcmp(mode, "close") == 0) {
		subject_at(21, client(), "21");
		subject_at(22, accept(20, NULL, NULL), "22");
		if (send(21, "to-server", 9, 0) != 9 || send(22, "to-client", 9, 0) != 9)
			subject_fail("send: errno %d", errno);
	} else {
		fcntl(20, F_SETFL, O_NONBLOCK);
		subject_at(21, client(), "21");
	}
	usleep(20000);
	subject_ready();
	subject_wait_term();
	if (strcmp(mode, "close") == 0) {
		closed(21);
		closed(22);
	} else {
		close(21);
		/* whatever is left of the old connection is refused or reset; a new one must work */
		int a = accept(20, NULL, NULL);
		if (a >= 0)
			close(a);
	}
	fresh_connection(20);
	subject_pass();
}
