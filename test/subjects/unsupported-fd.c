/*
 * unsupported-fd: holds one fd of a kind criu-ts refuses (--kind
 * packet-pipe: the write end of an O_DIRECT pipe; --kind mqueue: a POSIX
 * message queue with a message and a notification registered (mq_notify
 * SIGEV_SIGNAL), its name removed at once so nothing outlives us) at fd 20. (Netlink and
 * packet sockets, refused once, have kinds and subjects of their own now.)
 * A dump must stop with a refusal naming it and leave us running as before:
 * after SIGTERM fd 20 is still what it was.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	const char *kind = subject_opt("kind", "packet-pipe");
	if (strcmp(kind, "mqueue") == 0) {
		char name[64];
		snprintf(name, sizeof(name), "/criu-ts-subject-%d", getpid());
		mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, NULL);
		if (q < 0 || dup2(q, 20) != 20)
			subject_fail("mq_open: errno %d", errno);
		if (q != 20)
			close(q);
		mq_unlink(name);
		if (mq_send(20, "m", 1, 3) != 0)
			subject_fail("mq_send: errno %d", errno);
		/* Registered on a queue that is not empty: it fires only once it has emptied and a message comes. */
		struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
		if (mq_notify(20, &sev) != 0)
			subject_fail("mq_notify: errno %d", errno);
		subject_ready();
		subject_wait_term();
		struct mq_attr a;
		if (mq_getattr(20, &a) != 0 || a.mq_curmsgs != 1)
			subject_fail("fd 20 is no longer the queue with its message");
		if (mq_notify(20, &sev) != -1 || errno != EBUSY)
			subject_fail("the notification registration is gone (errno %d)", errno);
		subject_pass();
	}
	if (strcmp(kind, "packet-pipe") != 0)
		subject_fail("unknown --kind %s", kind);
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
