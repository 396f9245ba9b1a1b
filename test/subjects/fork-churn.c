/*
 * fork-churn: a task that forks all the time. Each child touches a little
 * memory and exits with a code derived from its sequence number; the
 * parent reaps it and checks that code. A checkpoint taken in the middle
 * catches children at any point of their short life (running, exiting,
 * zombie); after restore every child must still report the right code and
 * the parent's own memory must be intact.
 */
#include "subject.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA_BYTES (256 << 10)

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	uint64_t sum;
	unsigned char *data = subject_data(DATA_BYTES, 77, &sum);
	unsigned long forks = 0, bad = 0;
	subject_ready();
	while (!subject_term) {
		pid_t c = fork();
		if (c < 0)
			continue;
		if (c == 0) {
			volatile unsigned char scratch[4096];
			for (int i = 0; i < 4096; i++)
				scratch[i] = (unsigned char)(forks + i);
			_exit((int)((forks + scratch[17]) & 0x7f));
		}
		int st;
		pid_t w;
		while ((w = waitpid(c, &st, 0)) < 0)
			; /* EINTR from SIGTERM: keep waiting, the child is ours */
		unsigned char expect = (unsigned char)(forks + 17 + forks);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != (expect & 0x7f))
			bad++;
		forks++;
	}
	if (bad != 0)
		subject_fail("%lu of %lu children ended wrongly", bad, forks);
	if (forks < 10)
		subject_fail("only %lu forks", forks);
	if (subject_hash(data, DATA_BYTES) != sum)
		subject_fail("data area changed");
	subject_pass();
}
