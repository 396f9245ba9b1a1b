/*
 * epoll-fork: an epoll instance watching an eventfd, shared through fork
 * by the parent and a child (one open epoll, two tasks). After restore the
 * child, on SIGTERM from its parent, writes the eventfd and must see the
 * event through the shared epoll; then the parent sees it too, and the
 * child's exit code says how its check went.
 */
#include "subject.h"

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

static int check(int ep, uint64_t tag)
{
	struct epoll_event ev;
	int n = epoll_wait(ep, &ev, 1, 2000);
	return n == 1 && ev.data.u64 == tag && (ev.events & EPOLLIN);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int efd = eventfd(0, EFD_NONBLOCK);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xfeedbeefULL };
	if (efd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev))
		subject_fail("setup");
	pid_t c = fork();
	if (c == 0) {
		sigset_t s;
		sigemptyset(&s);
		while (!subject_term)
			sigsuspend(&s);
		uint64_t one = 1;
		if (write(efd, &one, 8) != 8)
			_exit(2);
		_exit(check(ep, 0xfeedbeefULL) ? 0 : 3);
	}
	subject_ready();
	subject_wait_term();
	kill(c, SIGTERM);
	int st;
	while (waitpid(c, &st, 0) < 0)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("child saw no event through the shared epoll (status 0x%x)", st);
	if (!check(ep, 0xfeedbeefULL))
		subject_fail("parent saw no event through the shared epoll");
	subject_pass();
}
