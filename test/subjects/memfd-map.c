/*
 * memfd-map: memfds reached through shared mappings (VMA_AREA_MEMFD):
 * "mapped", 3 pages + 10 bytes, mapped MAP_SHARED (4 pages) and its fd
 * closed; "both", 2 pages, open as fd 20 and mapped. Each file holds
 * seeded data (subject_map_filled), written through the mappings.
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

static uint64_t sums[2];

static unsigned char *map_memfd(const char *name, size_t size, size_t map_len, int keep_at, uint64_t *sum)
{
	int fd = memfd_create(name, 0);
	if (fd < 0 || ftruncate(fd, size) != 0)
		subject_fail("memfd %s: errno %d", name, errno);
	return subject_map_filled(fd, size, map_len, 73, sum, keep_at, name);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unsigned char *a = map_memfd("mapped", 3 * PAGE + 10, 4 * PAGE, -1, &sums[0]);
	unsigned char *b = map_memfd("both", 2 * PAGE, 2 * PAGE, 20, &sums[1]);

	subject_ready();
	subject_wait_term();

	if (subject_hash(a, 3 * PAGE + 10) != sums[0] || subject_hash(b, 2 * PAGE) != sums[1])
		subject_fail("mapping contents");
	unsigned char c;
	if (pread(20, &c, 1, PAGE + 1) != 1 || c != b[PAGE + 1])
		subject_fail("fd 20 and its mapping differ");
	subject_pass();
}
