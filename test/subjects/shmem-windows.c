/*
 * shmem-windows: one shared anonymous object seen through different
 * windows. After fork the child writes the object's first and last pages
 * and keeps the object mapped whole; the parent unmaps those pages (so only
 * the child maps them) and maps a second window of it through
 * /proc/self/map_files. The parent is
 * dumped first, so the object's pages outside its own windows must be
 * saved with it; after restore both still see one object (a write by the
 * child shows through both of the parent's windows).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL
#define N 64UL

static unsigned char *m;

static int page_is(const unsigned char *p, uint64_t seed)
{
	unsigned char want[PG];
	subject_fill(want, PG, seed);
	return memcmp(p, want, PG) == 0;
}

/* In the child, before the parent cuts its windows: the pages only the child will map. */
static const char *child_setup(void *arg)
{
	for (unsigned long i = 0; i < 4; i++) {
		subject_fill(m + i * PG, PG, 100 + i);
		subject_fill(m + (N - 1 - i) * PG, PG, 200 + i);
	}
	return NULL;
}

static const char *child_check(void *arg)
{
	for (unsigned long i = 0; i < 4; i++)
		if (!page_is(m + i * PG, 100 + i) || !page_is(m + (N - 1 - i) * PG, 200 + i))
			return "a page only the child maps";
	if (!page_is(m + 10 * PG, 10) || !page_is(m + 20 * PG, 20))
		return "pages the parent wrote after fork";
	subject_fill(m + 30 * PG, PG, 30); /* after restore: the parent must see it */
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	m = subject_shared_anon(N * PG);
	struct subject_child child = subject_fork_prepared("the child", child_setup, child_check, NULL);
	char path[128];
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m, (unsigned long)(m + N * PG));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		subject_fail("open %s: %s", path, strerror(errno));
	unsigned char *w2 = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 16 * PG); /* pages 16..31 again */
	if (w2 == MAP_FAILED)
		subject_fail("mmap a second window: %s", strerror(errno));
	close(fd);
	munmap(m, 4 * PG);
	munmap(m + (N - 4) * PG, 4 * PG);
	subject_fill(m + 10 * PG, PG, 10);
	subject_fill(w2 + 4 * PG, PG, 20); /* page 20 of the object */

	subject_ready();
	subject_wait_term();

	if (!page_is(m + 20 * PG, 20))
		subject_fail("page 20 through the first window");
	subject_child_verdict(child, "the child");
	if (!page_is(m + 30 * PG, 30) || !page_is(w2 + 14 * PG, 30))
		subject_fail("the child's write after restore is not seen through both windows");
	subject_pass();
}
