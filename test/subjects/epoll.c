/*
 * epoll: 20 eventfd(1), 22 eventfd(0); 21 epoll watching 20 (EPOLLIN, data
 * 0x1234) and 22 (EPOLLIN | EPOLLET, data 0xdeadbeefcafe); 23 an epoll
 * watching epoll 21 (data 7).
 * After SIGTERM: 21 reports 20 only; after a write to 22, both; 23 reports
 * 21 readable; the targets' numbers and data are as set up.
 * 24 an epoll watching an eventfd through fd 25, which is then closed while
 * fd 26 keeps the file (and 25 is reused by a pipe): after SIGTERM a write
 * to 26 is reported by 24.
 * With --gone-target 1 (a dump must refuse it): 27 an epoll watching an
 * eventfd that only a child still holds.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		subject_fail("epoll_ctl %d: errno %d", fd, errno);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, eventfd(1, 0), "eventfd 20");
	subject_at(22, eventfd(0, 0), "eventfd 22");
	subject_at(21, epoll_create1(0), "epoll 21");
	add(21, 20, EPOLLIN, 0x1234);
	add(21, 22, EPOLLIN | EPOLLET, 0xdeadbeefcafeULL);
	subject_at(23, epoll_create1(EPOLL_CLOEXEC), "epoll 23");
	add(23, 21, EPOLLIN, 7);
	subject_at(24, epoll_create1(0), "epoll 24");
	subject_at(25, eventfd(0, 0), "eventfd 25");
	add(24, 25, EPOLLIN, 0x2525);
	if (dup2(25, 26) != 26)
		subject_fail("dup2");
	close(25);
	int p[2];
	if (pipe(p) || dup2(p[0], 25) != 25)
		subject_fail("pipe at 25");
	pid_t child = -1;
	if (subject_opt_long("gone-target", 0)) {
		subject_at(27, epoll_create1(0), "epoll 27");
		subject_at(28, eventfd(0, 0), "eventfd 28");
		add(27, 28, EPOLLIN, 1);
		child = fork();
		if (child == 0) {
			for (;;)
				pause();
		}
		close(28);
	}

	subject_ready();
	subject_wait_term();
	if (child > 0)
		kill(child, SIGKILL);

	struct epoll_event got[4];
	int n = epoll_wait(21, got, 4, 0);
	if (n != 1 || got[0].data.u64 != 0x1234 || !(got[0].events & EPOLLIN))
		subject_fail("epoll 21 before write: %d events", n);
	n = epoll_wait(23, got, 4, 0);
	if (n != 1 || got[0].data.u64 != 7)
		subject_fail("nested epoll 23: %d events", n);
	uint64_t one = 1;
	if (write(22, &one, 8) != 8)
		subject_fail("write 22");
	n = epoll_wait(21, got, 4, 0);
	int seen = 0;
	for (int i = 0; i < n; i++)
		seen |= got[i].data.u64 == 0x1234 ? 1 : got[i].data.u64 == 0xdeadbeefcafeULL ? 2 : 4;
	if (n != 2 || seen != 3)
		subject_fail("epoll 21 after write: %d events, seen %d", n, seen);
	/* Edge-triggered: 22 is not reported again until written again. */
	n = epoll_wait(21, got, 4, 0);
	if (n != 1 || got[0].data.u64 != 0x1234)
		subject_fail("EPOLLET lost: %d events", n);
	if (epoll_wait(24, got, 4, 0) != 0)
		subject_fail("epoll 24 reports before its target is written");
	if (write(26, &one, 8) != 8)
		subject_fail("write 26");
	n = epoll_wait(24, got, 4, 0);
	if (n != 1 || got[0].data.u64 != 0x2525)
		subject_fail("epoll 24 does not watch the eventfd its closed fd 25 had: %d events", n);
	subject_pass();
}
