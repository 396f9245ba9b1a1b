/*
 * tcp-states: TCP connections half closed, closed and reset, both ends in
 * this process (dumped with --tcp-established). Pairs, first end / second:
 *   20/21 FIN_WAIT1 / ESTABLISHED  IPv4: 20 filled 21's buffers, then shut down (its FIN waits behind the data)
 *   22/23 FIN_WAIT2 / CLOSE_WAIT   IPv6: 22 sent "half" and shut down, 23 read nothing
 *   24/25 LAST_ACK  / FIN_WAIT2    v4-mapped IPv6 (24) to IPv4 (25): 25 shut down, 24 filled 25 and shut down
 *   26/27 CLOSING   / FIN_WAIT2    IPv4: 26 filled 27 and shut down, then 27 shut down
 *   28    CLOSE (reset), "asd" unread: its peer closed with SO_LINGER 0
 * Each is checked to be in its state before ready. After SIGTERM: every
 * byte arrives in order, then end of file where a FIN was sent; the
 * half-open directions still carry data; the reset socket reads "asd"
 * then end of file and refuses to write.
 * --split 1: a child holds the second ends (21, 23, 25, 27), so each
 * connection has its ends in two tasks.
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
#include <sys/wait.h>
#include <unistd.h>

static unsigned char buf[1 << 16];

static unsigned char pattern(size_t i, int seed)
{
	return (unsigned char)((i * 7 + (size_t)seed) & 0xff);
}

static socklen_t addr(int family, const char *ip, struct sockaddr_storage *ss)
{
	return subject_sockaddr(family, ip, 0, ss);
}

/*
 * A client of `cfamily` connected to `cip`, put at fd client_at, and its
 * peer accepted by a listener of `lfamily` on `lip` (closed after), put at
 * accepted_at, or where accept put it when accepted_at < 0; returns the peer.
 */
static int pair(int lfamily, const char *lip, int cfamily, const char *cip, int client_at, int accepted_at)
{
	struct sockaddr_storage ss;
	socklen_t l = addr(lfamily, lip, &ss);
	int lfd = socket(lfamily, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, l) != 0 || listen(lfd, 4) != 0)
		subject_fail("listener %s: errno %d", lip, errno);
	l = subject_sockaddr(cfamily, cip, subject_port_of(lfd), &ss);
	int cfd = socket(cfamily, SOCK_STREAM, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&ss, l) != 0)
		subject_fail("connect %s: errno %d", cip, errno);
	int afd = accept(lfd, NULL, NULL);
	if (afd < 0)
		subject_fail("accept: errno %d", errno);
	close(lfd);
	subject_at(client_at, cfd, "client");
	if (accepted_at < 0)
		return afd;
	subject_at(accepted_at, afd, "accepted");
	return accepted_at;
}

/* send from fd until its buffers and the peer's are full; returns the byte count */
static size_t fill(int fd, int seed)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	size_t sent = 0;
	for (;;) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern(sent + i, seed);
		ssize_t n = send(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			subject_fail("fill: errno %d", errno);
		}
		sent += (size_t)n;
	}
	fcntl(fd, F_SETFL, fl);
	return sent;
}

static int state_of(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) != 0)
		subject_fail("TCP_INFO %d: errno %d", fd, errno);
	return ti.tcpi_state;
}

static void expect_state(int fd, int want, const char *name)
{
	for (int i = 0; i < 200 && state_of(fd) != want; i++)
		usleep(5000);
	if (state_of(fd) != want)
		subject_fail("fd %d is in state %d, not %s", fd, state_of(fd), name);
}

static void expect_stream(int fd, size_t len, int seed, const char *what)
{
	for (size_t off = 0; off < len;) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);
		subject_readn(fd, buf, n, what);
		for (size_t i = 0; i < n; i++)
			if (buf[i] != pattern(off + i, seed))
				subject_fail("%s: byte %zu is %d, want %d", what, off + i, buf[i], pattern(off + i, seed));
		off += n;
	}
}

static void expect_eof(int fd, const char *what)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 5000) != 1)
		subject_fail("%s: no end of file", what);
	ssize_t r = recv(fd, buf, 1, 0);
	if (r != 0)
		subject_fail("%s: recv %zd errno %d, want end of file", what, r, errno);
}

static void send_all(int fd, const char *s, const char *what)
{
	if (send(fd, s, strlen(s), MSG_NOSIGNAL) != (ssize_t)strlen(s))
		subject_fail("%s: send errno %d", what, errno);
}

/* the second end of each pair: 21, 23, 25, 27 */
static void check_second(size_t fw1, size_t la, size_t cl)
{
	expect_stream(21, fw1, 1, "21 reads 20's stream");
	expect_eof(21, "21 after 20's FIN");
	send_all(21, "back", "21");
	shutdown(21, SHUT_WR);
	subject_readn(23, buf, 4, "23 reads half");
	if (memcmp(buf, "half", 4) != 0)
		subject_fail("23: garbled");
	expect_eof(23, "23 after 22's FIN");
	send_all(23, "still", "23");
	shutdown(23, SHUT_WR);
	expect_stream(25, la, 2, "25 reads 24's stream");
	expect_eof(25, "25 after 24's FIN");
	expect_stream(27, cl, 3, "27 reads 26's stream");
	expect_eof(27, "27 after 26's FIN");
}

/* the first end of each pair, and the reset socket */
static void check_first(void)
{
	subject_readn(20, buf, 4, "20 reads 21");
	if (memcmp(buf, "back", 4) != 0)
		subject_fail("20: garbled");
	expect_eof(20, "20 after 21's FIN");
	subject_readn(22, buf, 5, "22 reads 23");
	if (memcmp(buf, "still", 5) != 0)
		subject_fail("22: garbled");
	expect_eof(22, "22 after 23's FIN");
	expect_eof(24, "24 after 25's FIN");
	expect_eof(26, "26 after 27's FIN");
	subject_readn(28, buf, 3, "28 reads what came before the reset");
	if (memcmp(buf, "asd", 3) != 0)
		subject_fail("28: garbled");
	if (send(28, "x", 1, MSG_NOSIGNAL) != -1)
		subject_fail("28 writes to a reset connection");
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);

	pair(AF_INET, "127.0.0.1", AF_INET, "127.0.0.1", 20, 21);
	size_t fw1 = fill(20, 1);
	shutdown(20, SHUT_WR);

	pair(AF_INET6, "::1", AF_INET6, "::1", 22, 23);
	send_all(22, "half", "22");
	shutdown(22, SHUT_WR);

	pair(AF_INET, "127.0.0.1", AF_INET6, "::ffff:127.0.0.1", 24, 25);
	shutdown(25, SHUT_WR);
	expect_state(24, TCP_CLOSE_WAIT, "CLOSE_WAIT");
	size_t la = fill(24, 2);
	shutdown(24, SHUT_WR);

	pair(AF_INET, "127.0.0.1", AF_INET, "127.0.0.1", 26, 27);
	size_t cl = fill(26, 3);
	shutdown(26, SHUT_WR);
	shutdown(27, SHUT_WR);

	int b = pair(AF_INET, "127.0.0.1", AF_INET, "127.0.0.1", 28, -1);
	send_all(b, "asd", "reset peer");
	usleep(20000);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(b);

	expect_state(20, TCP_FIN_WAIT1, "FIN_WAIT1");
	expect_state(21, TCP_ESTABLISHED, "ESTABLISHED");
	expect_state(22, TCP_FIN_WAIT2, "FIN_WAIT2");
	expect_state(23, TCP_CLOSE_WAIT, "CLOSE_WAIT");
	expect_state(24, TCP_LAST_ACK, "LAST_ACK");
	expect_state(25, TCP_FIN_WAIT2, "FIN_WAIT2");
	expect_state(26, TCP_CLOSING, "CLOSING");
	expect_state(27, TCP_FIN_WAIT2, "FIN_WAIT2");
	expect_state(28, TCP_CLOSE, "CLOSE");
	subject_log("queued %zu / %zu / %zu bytes", fw1, la, cl);

	pid_t child = 0;
	if (subject_opt_long("split", 0)) {
		/* the second ends live in a child: the peers of a connection are in two tasks */
		child = fork();
		if (child < 0)
			subject_fail("fork: errno %d", errno);
		if (child == 0) {
			sigset_t term;
			sigemptyset(&term);
			sigaddset(&term, SIGTERM);
			sigprocmask(SIG_BLOCK, &term, NULL);
			int sig;
			sigwait(&term, &sig);
			close(20), close(22), close(24), close(26), close(28);
			check_second(fw1, la, cl);
			_exit(0);
		}
		close(21), close(23), close(25), close(27);
	}
	subject_ready();
	subject_wait_term();
	if (child > 0) {
		kill(child, SIGTERM);
		check_first();
		int st;
		if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			subject_fail("the child holding the second ends failed (status %#x)", st);
	} else {
		check_second(fw1, la, cl);
		check_first();
	}
	subject_pass();
}
