/*
 * shmem-windows: one shared anonymous object seen through different
 * windows. The parent unmaps the object's first and last pages after fork
 * and maps a second window of it through /proc/self/map_files; the child
 * keeps it whole and writes the pages only it still maps. The parent is
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

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	m = mmap(NULL, N * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		subject_fail("mmap: %s", strerror(errno));
	int ready[2], go[2], done[2];
	if (pipe(ready) || pipe(go) || pipe(done))
		subject_fail("pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child < 0)
		subject_fail("fork: %s", strerror(errno));
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		char c = 0;
		/* Wait until the parent has cut its windows, then write where only we map. */
		if (read(ready[0], &c, 1) != 1)
			_exit(2);
		for (unsigned long i = 0; i < 4; i++) {
			subject_fill(m + i * PG, PG, 100 + i);
			subject_fill(m + (N - 1 - i) * PG, PG, 200 + i);
		}
		if (write(done[1], &c, 1) != 1)
			_exit(2);
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		for (unsigned long i = 0; i < 4; i++)
			if (!page_is(m + i * PG, 100 + i) || !page_is(m + (N - 1 - i) * PG, 200 + i))
				_exit(3);
		if (!page_is(m + 10 * PG, 10) || !page_is(m + 20 * PG, 20))
			_exit(4);
		subject_fill(m + 30 * PG, PG, 30); /* after restore: the parent must see it */
		_exit(write(done[1], &c, 1) == 1 ? 0 : 2);
	}
	close(ready[0]);
	close(go[0]);
	close(done[1]);
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
	char c = 0;
	if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 1)
		subject_fail("child did not write its pages");

	subject_ready();
	subject_wait_term();

	if (!page_is(m + 20 * PG, 20))
		subject_fail("page 20 through the first window");
	if (write(go[1], &c, 1) != 1)
		subject_fail("wake child: %s", strerror(errno));
	if (read(done[0], &c, 1) != 1)
		subject_fail("child failed its checks");
	if (!page_is(m + 30 * PG, 30) || !page_is(w2 + 14 * PG, 30))
		subject_fail("the child's write after restore is not seen through both windows");
	int status;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		subject_fail("child: status 0x%x", status);
	subject_pass();
}
