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
	int p[2];
	if (pipe(p) != 0)
		subject_fail("pipe");
	pid_t child = fork();
	if (child < 0)
		subject_fail("fork");
	if (child == 0) {
		close(p[0]);
		subject_sleep_ms(delay);
		_exit(write(p[1], want, LEN) == LEN ? 0 : 3);
	}
	close(p[1]);

	subject_ready();
	size_t have = 0;
	while (have < LEN) {
		ssize_t r = read(p[0], got + have, LEN - have);
		if (r > 0)
			have += r;
		else if (r == 0)
			subject_fail("EOF after %zu bytes", have);
		else if (errno != EINTR || !subject_term)
			subject_fail("read: errno %d (term %d)", errno, (int)subject_term);
	}
	if (memcmp(got, want, LEN) != 0)
		subject_fail("pipe bytes differ");
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			subject_fail("waitpid: errno %d", errno);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("writer child status 0x%x", st);
	subject_wait_term();
	subject_pass();
}
