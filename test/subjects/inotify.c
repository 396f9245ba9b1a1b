/*
 * inotify: 20 inotify (non-blocking) watching the dir "top" (wd 1,
 * IN_CREATE), "sub" (wd 2, IN_CREATE | IN_DELETE) and, after a watch on
 * "a.txt" was removed, "b.txt" (wd 4, IN_MODIFY): numbers with a gap.
 * After SIGTERM: nothing is queued; creating sub/x, writing b.txt and
 * creating y give exactly the events of wd 2, 4 and 1, in that order.
 * With --pending 1 an event stays queued (sub/p created after ready): a
 * dump must refuse rather than lose it, and the event is still there.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static char buf[4096] __attribute__((aligned(8)));

static void expect(int wd, uint32_t mask, const char *name)
{
	ssize_t n = read(20, buf, sizeof(buf));
	struct inotify_event *ev = (struct inotify_event *)buf;
	if (n <= 0)
		subject_fail("no event for wd %d (errno %d)", wd, errno);
	if (ev->wd != wd || !(ev->mask & mask) || (name && strcmp(ev->name, name) != 0))
		subject_fail("event wd %d mask 0x%x, wanted wd %d mask 0x%x", ev->wd, ev->mask, wd, mask);
	if ((size_t)n != sizeof(*ev) + ev->len)
		subject_fail("more than one event after wd %d", wd);
}

static void touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	if (fd < 0)
		subject_fail("create %s: errno %d", path, errno);
	close(fd);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (mkdir("sub", 0700) != 0)
		subject_fail("mkdir");
	touch("a.txt");
	touch("b.txt");
	int fd = inotify_init1(IN_NONBLOCK);
	if (fd < 0 || dup2(fd, 20) != 20)
		subject_fail("inotify_init1: errno %d", errno);
	close(fd);
	if (mkdir("top", 0700) != 0)
		subject_fail("mkdir top");
	if (inotify_add_watch(20, "top", IN_CREATE) != 1 || inotify_add_watch(20, "sub", IN_CREATE | IN_DELETE) != 2)
		subject_fail("watches 1, 2");
	if (inotify_add_watch(20, "a.txt", IN_MODIFY) != 3 || inotify_rm_watch(20, 3) != 0)
		subject_fail("watch 3");
	if (inotify_add_watch(20, "b.txt", IN_MODIFY) != 4)
		subject_fail("watch 4");
	expect(3, IN_IGNORED, NULL);

	if (subject_opt_long("pending", 0)) {
		touch("sub/p");
		subject_ready();
		subject_wait_term();
		ssize_t n = read(20, buf, sizeof(buf));
		for (ssize_t off = 0; off < n;) {
			struct inotify_event *ev = (struct inotify_event *)(buf + off);
			if (ev->wd == 2 && ev->len > 0 && strcmp(ev->name, "p") == 0)
				subject_pass();
			off += (ssize_t)sizeof(*ev) + ev->len;
		}
		subject_fail("the queued event for sub/p is gone");
	}
	subject_ready();
	subject_wait_term();

	if (read(20, buf, sizeof(buf)) != -1 || errno != EAGAIN)
		subject_fail("events queued after restore, or blocking");
	touch("sub/x");
	expect(2, IN_CREATE, "x");
	int b = open("b.txt", O_WRONLY);
	if (b < 0 || write(b, "z", 1) != 1)
		subject_fail("write b.txt");
	close(b);
	expect(4, IN_MODIFY, NULL);
	touch("top/y");
	expect(1, IN_CREATE, "y");
	subject_pass();
}
