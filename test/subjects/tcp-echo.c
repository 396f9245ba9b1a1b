/*
 * tcp-echo: a TCP server on 127.0.0.1 that echoes every byte back to each
 * of its clients (processes outside the dump). Writes its port to
 * ./port before ready. After SIGTERM: PASS unless a connection failed.
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

#define MAX 16

static volatile sig_atomic_t term;
static void on_term(int s) { (void)s; term = 1; }

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, MAX) != 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) != 0)
		subject_fail("listener: errno %d", errno);
	FILE *f = fopen("port.tmp", "w");
	if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0 || rename("port.tmp", "port") != 0)
		subject_fail("port file: errno %d", errno);
	subject_ready();
	struct pollfd p[MAX + 1];
	int n = 0;
	static char buf[1 << 16];
	p[0] = (struct pollfd){ .fd = l, .events = POLLIN };
	while (!term) {
		int r = poll(p, (nfds_t)n + 1, 200);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			subject_fail("poll: errno %d", errno);
		}
		if ((p[0].revents & POLLIN) && n < MAX) {
			int c = accept(l, NULL, NULL);
			if (c < 0)
				subject_fail("accept: errno %d", errno);
			n++;
			p[n] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
		for (int i = 1; i <= n; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t got = recv(p[i].fd, buf, sizeof(buf), 0);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				subject_fail("client %d: recv errno %d", i, errno);
			if (got == 0) {
				close(p[i].fd);
				p[i].fd = -1;
				continue;
			}
			for (ssize_t off = 0; off < got;) {
				ssize_t w = send(p[i].fd, buf + off, (size_t)(got - off), 0);
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0)
					subject_fail("client %d: send errno %d", i, errno);
				off += w;
			}
		}
	}
	subject_pass();
}
