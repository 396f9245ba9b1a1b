/*
 * wait-child: blocked in waitpid() on a child that exits with status 42
 * after --delay-ms (default 1500). waitpid is retried only on EINTR from
 * SIGTERM; it must report that child with exactly that status.
 */
#include "subject.h"

#include <errno.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	long delay = subject_opt_long("delay-ms", 1500);
	pid_t child = fork();
	if (child < 0)
		subject_fail("fork");
	if (child == 0) {
		subject_sleep_ms(delay);
		_exit(42);
	}

	subject_ready();
	int st = 0;
	pid_t r;
	while ((r = waitpid(child, &st, 0)) < 0)
		if (errno != EINTR || !subject_term)
			subject_fail("waitpid: errno %d (term %d)", errno, (int)subject_term);
	if (r != child)
		subject_fail("waitpid returned %d, want %d", r, child);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 42)
		subject_fail("child status 0x%x, want exit 42", st);
	subject_wait_term();
	subject_pass();
}
