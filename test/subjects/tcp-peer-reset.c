/*
 * tcp-peer-reset: a TCP connection whose peer, a process outside the
 * dump, resets it while the subject is dumped (the network lock drops the
 * reset; the peer's socket is gone at once). Run by
 * test/kinds/files/inet-peer-reset.test.ts, not by the table.
 *
 * Listens on 127.0.0.1 (port in ./port), says ready, accepts one client,
 * waits for its "ping" without reading it, then writes ./accepted.
 * After SIGTERM: the queued "ping" still reads back, and the connection is
 * known dead before the subject sends anything: the first send fails
 * (ECONNRESET or EPIPE), as it would have had the reset come in while the
 * subject ran. A restore that lets the connection leave repair mode while
 * the lock still drops its packets learns of the reset only when TCP next
 * retransmits, a second or more later: that first send then succeeds.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0)
		subject_fail("listener: errno %d", errno);
	char port[16];
	snprintf(port, sizeof(port), "%d\n", subject_port_of(l));
	subject_write_atomic("port", port);
	subject_ready();
	int c = accept(l, NULL, NULL);
	if (c < 0)
		subject_fail("accept: errno %d", errno);
	struct pollfd p = { .fd = c, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1)
		subject_fail("no ping from the client");
	subject_write_atomic("accepted", "1\n");
	subject_wait_term();

	char buf[8];
	ssize_t n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
	if (n != 4 || memcmp(buf, "ping", 4) != 0)
		subject_fail("recv gave %zd (errno %d), want the queued ping", n, errno);
	n = send(c, "pong", 4, MSG_DONTWAIT);
	if (n >= 0)
		subject_fail("send went through (%zd bytes) on a connection its peer reset", n);
	if (errno != ECONNRESET && errno != EPIPE)
		subject_fail("send: errno %d, want ECONNRESET or EPIPE", errno);
	subject_pass();
}
