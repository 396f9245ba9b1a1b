/*
 * shmem-child-writes: a MAP_SHARED|MAP_ANONYMOUS region whose pages were
 * written only by a child, never touched by the parent (the first task a
 * dump meets). After restore the parent must read the child's bytes, and
 * a write by either must still be seen by the other.
 */
#include "subject.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 64
#define PAGE 4096

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unsigned char *m = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		subject_fail("mmap");
	int go[2];
	if (pipe(go))
		subject_fail("pipe");
	pid_t c = fork();
	if (c == 0) {
		for (int p = 40; p < 50; p++)
			memset(m + p * PAGE, p, PAGE);
		sigset_t s;
		sigemptyset(&s);
		while (!subject_term)
			sigsuspend(&s);
		/* The parent wrote page 3 after restore: see it, answer on page 4. */
		for (int i = 0; i < 200 && m[3 * PAGE] != 0x33; i++)
			usleep(10000);
		m[4 * PAGE] = m[3 * PAGE] == 0x33 ? 0x44 : 0x99;
		_exit(0);
	}
	usleep(200000); /* let the child write; the parent touches nothing */
	subject_ready();
	subject_wait_term();
	for (int p = 40; p < 50; p++)
		for (int i = 0; i < PAGE; i++)
			if (m[p * PAGE + i] != p)
				subject_fail("page %d byte %d is %d: the child's writes were lost", p, i, m[p * PAGE + i]);
	m[3 * PAGE] = 0x33;
	kill(c, SIGTERM);
	int st;
	while (waitpid(c, &st, 0) < 0)
		;
	if (m[4 * PAGE] != 0x44)
		subject_fail("parent and child no longer share the region (answer 0x%x)", m[4 * PAGE]);
	subject_pass();
}
