/*
 * fd-kinds: one fd of each anon-inode/special kind at a fixed number:
 *   20 eventfd(5, SEMAPHORE|NONBLOCK)   21 epoll watching 20 (IN|OUT, data 0x1234)
 *   22 timerfd MONOTONIC value 100 s, interval 1.5 s
 *   23 signalfd {SIGUSR1, SIGHUP} (blocked)   24 inotify watching the dir "watched"
 *   26 lock.dat under flock(LOCK_EX)    27 posix.dat with a POSIX write lock on [100, 200)
 *   28 pidfd of ourselves
 *   with --fanotify 1: 25 fanotify with a mount mark;  with --tty 1: 29 /dev/ptmx
 * After SIGTERM each one is made to work: a semaphore read, an epoll_wait,
 * timerfd_gettime, a signal read through signalfd, an inotify event, lock
 * conflicts seen from a second description and from a child.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK), "eventfd");
	subject_at(21, epoll_create1(0), "epoll");
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u64 = 0x1234 };
	if (epoll_ctl(21, EPOLL_CTL_ADD, 20, &ev) != 0)
		subject_fail("epoll_ctl");
	subject_at(22, timerfd_create(CLOCK_MONOTONIC, 0), "timerfd");
	struct itimerspec its = { { 1, 500000000 }, { 100, 0 } };
	timerfd_settime(22, 0, &its, NULL);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	subject_at(23, signalfd(-1, &sigs, 0), "signalfd");
	subject_at(24, inotify_init1(0), "inotify");
	/* Not the work dir: the ready file made there would queue an event, which a dump refuses. */
	if (mkdir("watched", 0700) != 0 || inotify_add_watch(24, "watched", IN_CREATE | IN_DELETE) != 1)
		subject_fail("inotify_add_watch");
	if (subject_opt_long("fanotify", 0)) {
		subject_at(25, fanotify_init(FAN_CLASS_NOTIF, O_RDONLY), "fanotify");
		if (fanotify_mark(25, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, ".") != 0)
			subject_fail("fanotify_mark");
	}
	subject_at(26, open("lock.dat", O_RDWR | O_CREAT, 0600), "lock.dat");
	if (flock(26, LOCK_EX) != 0)
		subject_fail("flock");
	subject_at(27, open("posix.dat", O_RDWR | O_CREAT, 0600), "posix.dat");
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 100 };
	if (fcntl(27, F_SETLK, &fl) != 0)
		subject_fail("F_SETLK");
	subject_at(28, (int)syscall(SYS_pidfd_open, getpid(), 0), "pidfd");
	if (subject_opt_long("tty", 0))
		subject_at(29, open("/dev/ptmx", O_RDWR | O_NOCTTY), "ptmx");

	subject_ready();
	subject_wait_term();

	uint64_t v;
	if (read(20, &v, 8) != 8 || v != 1)
		subject_fail("eventfd semaphore read");
	struct epoll_event got;
	if (epoll_wait(21, &got, 1, 0) != 1 || got.data.u64 != 0x1234 || !(got.events & EPOLLIN))
		subject_fail("epoll_wait");
	struct itimerspec cur;
	if (timerfd_gettime(22, &cur) != 0 || cur.it_interval.tv_sec != 1 || cur.it_interval.tv_nsec != 500000000 ||
	    cur.it_value.tv_sec < 1 || cur.it_value.tv_sec > 100)
		subject_fail("timerfd settings changed");
	raise(SIGHUP);
	struct signalfd_siginfo si;
	if (read(23, &si, sizeof(si)) != sizeof(si) || si.ssi_signo != SIGHUP)
		subject_fail("signalfd read");
	close(open("watched/created.txt", O_CREAT | O_WRONLY, 0600));
	char ibuf[4096] __attribute__((aligned(8)));
	struct inotify_event *ie = (struct inotify_event *)ibuf;
	if (read(24, ibuf, sizeof(ibuf)) <= 0 || ie->wd != 1 || !(ie->mask & IN_CREATE))
		subject_fail("inotify event");
	int other = open("lock.dat", O_RDWR);
	if (flock(other, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		subject_fail("flock no longer held");
	pid_t me = getpid(), c = fork();
	if (c == 0) {
		struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 150, .l_len = 1 };
		_exit(fcntl(27, F_GETLK, &q) == 0 && q.l_type == F_WRLCK && q.l_pid == me && q.l_start == 100 ? 0 : 1);
	}
	int st;
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("POSIX lock not seen by a child");
	if (fcntl(28, F_GETFD) < 0)
		subject_fail("pidfd closed");
	subject_pass();
}
