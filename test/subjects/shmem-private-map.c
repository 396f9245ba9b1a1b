/*
 * shmem-private-map: a shared anonymous object mapped privately through
 * /proc/self/map_files (copy-on-write over the object) and shared through a
 * second window. After restore the private mapping keeps its own copy of
 * the page it wrote, and still sees the object's other pages, including a
 * write made through the shared mapping after restore.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096L

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char *a = mmap(NULL, 5 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		subject_fail("mmap: %s", strerror(errno));
	*(int *)a = 1;
	*(int *)(a + PG) = 11;
	*(int *)(a + 2 * PG) = 111;
	char path[128];
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (long)a, (long)a + 5 * PG);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		subject_fail("open %s: %s", path, strerror(errno));
	char *priv = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, PG);   /* object pages 1..4 */
	char *second = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 2 * PG); /* object pages 2..4 */
	if (priv == MAP_FAILED || second == MAP_FAILED)
		subject_fail("mmap through map_files: %s", strerror(errno));
	close(fd);
	*(int *)(priv + PG) = 22; /* its own copy of object page 2 */

	subject_ready();
	subject_wait_term();

	if (*(int *)(priv + PG) != 22)
		subject_fail("the private copy of object page 2 is lost");
	if (*(int *)priv != 11)
		subject_fail("object page 1 through the private mapping");
	if (*(int *)second != 111)
		subject_fail("object page 2 through the second shared window");
	*(int *)second = 333;
	if (*(int *)(a + 2 * PG) != 333)
		subject_fail("the two shared windows are no longer one object");
	*(int *)(a + 3 * PG) = 444;
	if (*(int *)(priv + 2 * PG) != 444)
		subject_fail("the private mapping no longer sees the object's pages it did not copy");
	subject_pass();
}
