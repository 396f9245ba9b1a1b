/*
 * unix-ext-pair: fd 20 is one end of a stream socketpair whose other end
 * is held outside the dumped tree (by a grandchild that left it: its
 * parent exited at once, so it is nobody's descendant here; its pid goes to
 * OUTFILE.holder). That peer has no name: only --external unix[INO] (INO:
 * fd 20's inode) lets the dump save fd 20, and the restore must be given a
 * socket for it (--inherit-fd fd[N]:socket:[INO]). On SIGTERM it sends
 * "after" on fd 20 and passes when "ok" comes back within 5 s (from
 * whoever holds the other end of the socket fd 20 is now).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		subject_fail("socketpair: errno %d", errno);
	int hp[2];
	if (pipe(hp) != 0)
		subject_fail("pipe: errno %d", errno);
	pid_t a = fork();
	if (a < 0)
		subject_fail("fork: errno %d", errno);
	if (a == 0) {
		pid_t b = fork();
		if (b == 0) {
			/* The holder: keeps sv[1] open until it is killed; in a session of its own,
			 * so that its session and group ids do not keep our pid in use. */
			setsid();
			close(sv[0]);
			close(hp[0]);
			close(hp[1]);
			for (;;)
				pause();
		}
		if (write(hp[1], &b, sizeof(b)) != sizeof(b))
			_exit(1);
		_exit(0);
	}
	close(hp[1]);
	pid_t holder = 0;
	if (read(hp[0], &holder, sizeof(holder)) != sizeof(holder))
		subject_fail("no holder pid");
	close(hp[0]);
	waitpid(a, NULL, 0);
	close(sv[1]);
	if (dup2(sv[0], 20) != 20)
		subject_fail("dup2: errno %d", errno);
	close(sv[0]);
	char path[4096];
	snprintf(path, sizeof(path), "%s.holder", subject_opt("out", ""));
	FILE *f = fopen(path, "w");
	if (!f)
		subject_fail("%s: errno %d", path, errno);
	fprintf(f, "%d\n", (int)holder);
	fclose(f);
	subject_ready();
	subject_wait_term();
	if (send(20, "after", 5, MSG_NOSIGNAL) != 5)
		subject_fail("send after: errno %d", errno);
	struct pollfd p = { .fd = 20, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		subject_fail("no answer on fd 20");
	char buf[8] = { 0 };
	ssize_t n = recv(20, buf, sizeof(buf) - 1, 0);
	if (n != 2 || memcmp(buf, "ok", 2) != 0)
		subject_fail("answer %zd bytes: %s", n, buf);
	subject_pass();
}
