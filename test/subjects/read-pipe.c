/*
 * read-pipe: blocked in read() on a pipe whose writer is our child; the
 * child writes 64 known bytes after --delay-ms (default 1500) and exits 0.
 * The read is retried only on EINTR from SIGTERM; it must end with exactly
 * those bytes, never EOF or garbage, and the child must exit 0.
 */
#include "subject.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LEN 64

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	long delay = subject_opt_long("delay-ms", 1500);
	unsigned char want[LEN], got[LEN];
	subject_fill(want, LEN, 0x9192);
	pid_t child;
	int rfd = subject_delayed_writer(delay, want, LEN, &child);

	subject_ready();
	size_t have = 0;
	while (have < LEN) {
		ssize_t r = read(rfd, got + have, LEN - have);
		if (r > 0)
			have += r;
		else if (r == 0)
			subject_fail("EOF after %zu bytes", have);
		else if (errno != EINTR || !subject_term)
			subject_fail("read: errno %d (term %d)", errno, (int)subject_term);
	}
	if (memcmp(got, want, LEN) != 0)
		subject_fail("pipe bytes differ");
	subject_reap_ok(child, "writer");
	subject_wait_term();
	subject_pass();
}
