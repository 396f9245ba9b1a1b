/*
 * memfd-map: memfds reached through shared mappings (VMA_AREA_MEMFD):
 * "mapped", 3 pages + 10 bytes, mapped MAP_SHARED (4 pages) and its fd
 * closed; "both", 2 pages, open as fd 20 and mapped. Byte k of each file
 * holds (k * 7 + 3) & 0xff, written through the mappings.
 * After SIGTERM: both mappings still hold the pattern and fd 20 reads what
 * its mapping holds.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static unsigned char *map_memfd(const char *name, size_t size, size_t map_len, int keep_at)
{
	int fd = memfd_create(name, 0);
	if (fd < 0 || ftruncate(fd, size) != 0)
		subject_fail("memfd %s: errno %d", name, errno);
	unsigned char *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		subject_fail("mmap %s: errno %d", name, errno);
	for (size_t k = 0; k < size; k++)
		p[k] = (unsigned char)(k * 7 + 3);
	if (keep_at >= 0 && dup2(fd, keep_at) != keep_at)
		subject_fail("dup2");
	close(fd);
	return p;
}

static int intact(const unsigned char *p, size_t size)
{
	for (size_t k = 0; k < size; k++)
		if (p[k] != (unsigned char)(k * 7 + 3))
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unsigned char *a = map_memfd("mapped", 3 * PAGE + 10, 4 * PAGE, -1);
	unsigned char *b = map_memfd("both", 2 * PAGE, 2 * PAGE, 20);

	subject_ready();
	subject_wait_term();

	if (!intact(a, 3 * PAGE + 10) || !intact(b, 2 * PAGE))
		subject_fail("mapping contents");
	unsigned char c;
	if (pread(20, &c, 1, PAGE + 1) != 1 || c != b[PAGE + 1])
		subject_fail("fd 20 and its mapping differ");
	subject_pass();
}
