/*
 * poll: blocked in poll() (10 s timeout) on a pipe; our child writes after
 * --delay-ms (default 1500). poll is re-entered with the time left only on
 * EINTR from SIGTERM. It must report POLLIN, never a timeout, and not before
 * the child wrote; the data must then read back exactly.
 */
#include "subject.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 10000

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	long delay = subject_opt_long("delay-ms", 1500);
	pid_t child;
	int rfd = subject_delayed_writer(delay, "polled!", 8, &child);

	subject_ready();
	int64_t t0 = subject_now_ns();
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	for (;;) {
		int left = TIMEOUT_MS - (int)((subject_now_ns() - t0) / 1000000);
		int r = poll(&pfd, 1, left > 0 ? left : 0);
		if (r == 1)
			break;
		if (r == 0)
			subject_fail("poll timed out after %lld ms", (long long)((subject_now_ns() - t0) / 1000000));
		if (errno != EINTR || !subject_term)
			subject_fail("poll: errno %d (term %d)", errno, (int)subject_term);
	}
	if (!(pfd.revents & POLLIN))
		subject_fail("revents 0x%x", pfd.revents);
	char buf[16] = "";
	if (read(rfd, buf, sizeof(buf)) != 8 || strcmp(buf, "polled!") != 0)
		subject_fail("wrong data after poll");
	subject_reap_ok(child, "writer");
	subject_wait_term();
	subject_pass();
}
