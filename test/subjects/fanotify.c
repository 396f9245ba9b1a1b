/*
 * fanotify: 20 fanotify (FAN_CLASS_NOTIF | FAN_NONBLOCK) with a mount mark
 * for FAN_OPEN on the work dir's mount and an inode mark for FAN_MODIFY on
 * "f.txt"; queued events are drained before ready.
 * After SIGTERM: writing f.txt gives a FAN_MODIFY event from our pid, and
 * opening it a FAN_OPEN one (other processes' events on the mount are
 * skipped).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

static char buf[8192] __attribute__((aligned(8)));

static uint64_t events_of_mine(void)
{
	uint64_t mask = 0;
	ssize_t n;
	while ((n = read(20, buf, sizeof(buf))) > 0) {
		struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			if (m->pid == getpid())
				mask |= m->mask;
			if (m->fd >= 0)
				close(m->fd);
		}
	}
	return mask;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int f = open("f.txt", O_CREAT | O_WRONLY, 0600);
	if (f < 0)
		subject_fail("create f.txt");
	close(f);
	int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (fd < 0 || dup2(fd, 20) != 20)
		subject_fail("fanotify_init: errno %d", errno);
	close(fd);
	if (fanotify_mark(20, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN, AT_FDCWD, ".") != 0)
		subject_fail("mount mark: errno %d", errno);
	if (fanotify_mark(20, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, "f.txt") != 0)
		subject_fail("inode mark: errno %d", errno);
	events_of_mine();

	subject_ready();
	subject_wait_term();

	events_of_mine();
	f = open("f.txt", O_WRONLY);
	if (f < 0 || write(f, "x", 1) != 1)
		subject_fail("write f.txt");
	close(f);
	uint64_t got = events_of_mine();
	if (!(got & FAN_OPEN) || !(got & FAN_MODIFY))
		subject_fail("events 0x%llx, wanted FAN_OPEN and FAN_MODIFY", (unsigned long long)got);
	subject_pass();
}
