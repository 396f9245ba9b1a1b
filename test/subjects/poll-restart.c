/*
 * poll-restart: blocked in 2 s polls on an empty pipe from right after
 * ready. A poll stopped once (a pre-dump) is restarted by the kernel
 * through restart_syscall, whose arguments live only in the kernel's
 * restart_block; dumped there, the restored poll must return 0 or EINTR
 * (CRIU's answer too), never run another call's restart state (EFAULT).
 */
#include "subject.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int p[2];
	if (pipe(p) != 0)
		subject_fail("pipe: errno %d", errno);
	int polls = 0, eintr = 0;

	subject_ready();
	while (!subject_term) {
		struct pollfd fd = { .fd = p[0], .events = POLLIN };
		int r = poll(&fd, 1, 2000);
		if (r > 0)
			subject_fail("poll: %d ready, revents %#x, on an empty pipe", r, fd.revents);
		if (r < 0 && errno != EINTR)
			subject_fail("poll: errno %d", errno);
		if (r < 0)
			eintr++;
		polls++;
	}
	subject_log("%d polls, %d interrupted", polls, eintr);
	subject_pass();
}
