/*
 * shared-anon-fork: a MAP_SHARED|MAP_ANONYMOUS region mapped before fork is
 * one memory object for parent and child; a restore must keep it one
 * object, not give each task its own copy. Before ready both sides fill
 * and check the region. At check time the parent creates the file "check";
 * the child then writes a token into the shared region, and the parent
 * must see it there (and the child must see the parent's reply).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGION_BYTES (64 * 1024)

struct region {
	volatile uint64_t token;   /* child -> parent after the check begins */
	volatile uint64_t reply;   /* parent -> child */
	unsigned char data[REGION_BYTES - 16];
};

/* Wait up to 5 s for *p == want. */
static int wait_value(volatile uint64_t *p, uint64_t want)
{
	for (int i = 0; i < 1000; i++) {
		if (*p == want)
			return 1;
		subject_sleep_ms(5);
	}
	return 0;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unlink("check");
	struct region *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		subject_fail("mmap: %s", strerror(errno));
	subject_fill(r->data, sizeof(r->data), 0x5a5a);
	uint64_t h = subject_hash(r->data, sizeof(r->data));

	pid_t child = fork();
	if (child < 0)
		subject_fail("fork: %s", strerror(errno));
	if (child == 0) {
		signal(SIGTERM, SIG_DFL);
		r->token = 1; /* proves sharing before ready */
		while (access("check", F_OK) != 0) {
			if (getppid() == 1)
				_exit(4);
			subject_sleep_ms(5);
		}
		if (subject_hash(r->data, sizeof(r->data)) != h)
			_exit(2);
		r->token = 0x70cc3;
		_exit(wait_value(&r->reply, 0x3e91) ? 0 : 3);
	}
	if (!wait_value(&r->token, 1))
		subject_fail("child's write not seen before ready");

	subject_ready();
	subject_wait_term();
	if (subject_hash(r->data, sizeof(r->data)) != h)
		subject_fail("shared region contents changed");
	FILE *f = fopen("check", "we");
	if (f == NULL || fclose(f) != 0)
		subject_fail("create 'check': %s", strerror(errno));
	if (!wait_value(&r->token, 0x70cc3))
		subject_fail("the child's write after restore is not in our mapping (token 0x%llx): not shared any more",
			     (unsigned long long)r->token);
	r->reply = 0x3e91;
	int st;
	if (waitpid(child, &st, 0) != child)
		subject_fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		subject_fail("child status 0x%x (exit 2: contents changed, 3: our reply not seen)", st);
	subject_pass();
}
