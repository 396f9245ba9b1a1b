/*
 * inotify-unlinked: an inotify watch (fd 20) on a file that was then
 * unlinked while fd 21 keeps it open, and a watch on its directory.
 * After SIGTERM: writing through fd 21 and closing it reach the file's
 * watch (IN_MODIFY, IN_CLOSE_WRITE with its wd): the watch is on the very
 * inode fd 21 has. And the directory's watch saw nothing since ready:
 * the restore's own work there (the ghost's name) left no event queued.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Events seen on `wd` since the last call (others are skipped). */
static unsigned int events_on(int wd)
{
	char buf[4096] __attribute__((aligned(8)));
	unsigned int seen = 0;
	for (;;) {
		ssize_t n = read(20, buf, sizeof(buf));
		if (n <= 0)
			return seen;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (e->wd == wd)
				seen |= e->mask;
			p += sizeof(*e) + e->len;
		}
	}
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (mkdir("d", 0755))
		subject_fail("mkdir");
	subject_at(20, inotify_init1(IN_NONBLOCK), "inotify");
	subject_at(21, open("d/f", O_RDWR | O_CREAT, 0644), "d/f");
	int dwd = inotify_add_watch(20, "d", IN_CREATE | IN_DELETE);
	int fwd = inotify_add_watch(20, "d/f", IN_MODIFY | IN_CLOSE_WRITE);
	if (dwd < 0 || fwd < 0)
		subject_fail("inotify_add_watch: %s", strerror(errno));
	if (unlink("d/f"))
		subject_fail("unlink");
	events_on(dwd);

	subject_ready();
	subject_wait_term();

	/* Nobody touched d since ready: events here are a restore's own doings (the ghost of d/f made and removed). */
	unsigned int stray = events_on(dwd);
	if (stray)
		subject_fail("the directory's watch saw 0x%x that nobody did", stray);
	if (write(21, "x", 1) != 1)
		subject_fail("write");
	close(21);
	unsigned int got = events_on(fwd);
	if ((got & (IN_MODIFY | IN_CLOSE_WRITE)) != (IN_MODIFY | IN_CLOSE_WRITE))
		subject_fail("the watch on the unlinked file saw 0x%x", got);
	subject_pass();
}
