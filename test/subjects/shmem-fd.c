/*
 * shmem-fd: fds opened on shared anonymous mappings through
 * /proc/self/map_files (the fd is the mapping's shmem object, shown as a
 * deleted /dev/zero). After restore each fd is still that very object:
 *   A: mapped (3 pages) and open, extended through the fd to 4 pages with
 *      data past the mapping; a write through the fd shows in the mapping
 *      and one through the mapping in the fd;
 *   B: open only (its mapping gone), truncated and rewritten through the
 *      fd, O_APPEND, position 3 (zdtm's shmemfd);
 *   C: open in the parent and in a child (one open file description, a file
 *      the parent opens before the child is forked), mapped by the child
 *      only: the parent's write through the fd reaches the child's mapping
 *      and the child's write through its mapping reaches the fd.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG 4096L

static char *c_map;

static int open_map_files(void *addr, long len)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (long)addr, (long)addr + len);
	int fd = open(path, O_RDWR);
	if (fd < 0)
		subject_fail("open %s: %s", path, strerror(errno));
	return fd;
}

static const char *link_is_shmem(int fd)
{
	char path[64], link[256];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return "readlink failed";
	link[n] = 0;
	return strcmp(link, "/dev/zero (deleted)") == 0 ? NULL : "the fd is not a shared anonymous object any more";
}

static const char *child_check(void *arg)
{
	int fd = *(int *)arg;
	/* The parent wrote through the fd before it sent us SIGTERM. */
	if (memcmp(c_map, "parent", 6) != 0)
		return "the parent's write through the fd is not in the child's mapping";
	memcpy(c_map + PG, "child", 5);
	if (link_is_shmem(fd) != NULL)
		return "the child's fd is not a shared anonymous object";
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);

	char *a = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		subject_fail("mmap A: %s", strerror(errno));
	memcpy(a, "A0", 2);
	int fa = open_map_files(a, 3 * PG);
	if (ftruncate(fa, 4 * PG) != 0 || pwrite(fa, "tail", 4, 3 * PG + 100) != 4)
		subject_fail("extend A through its fd: %s", strerror(errno));

	char *b = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		subject_fail("mmap B: %s", strerror(errno));
	int fb = open_map_files(b, PG);
	munmap(b, PG);
	if (ftruncate(fb, 0) != 0 || fcntl(fb, F_SETFL, O_APPEND) != 0 || write(fb, "hello", 5) != 5 || lseek(fb, 3, SEEK_SET) != 3)
		subject_fail("set up B: %s", strerror(errno));

	c_map = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c_map == MAP_FAILED)
		subject_fail("mmap C: %s", strerror(errno));
	int fc = open_map_files(c_map, 2 * PG);
	struct subject_child child = subject_fork_checker(child_check, &fc);
	munmap(c_map, 2 * PG);

	subject_ready();
	subject_wait_term();

	const char *why;
	if ((why = link_is_shmem(fa)) != NULL || (why = link_is_shmem(fb)) != NULL || (why = link_is_shmem(fc)) != NULL)
		subject_fail("%s", why);

	/* A */
	struct stat st, mst;
	char buf[8] = { 0 };
	char path[128];
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (long)a, (long)a + 3 * PG);
	if (fstat(fa, &st) != 0 || stat(path, &mst) != 0)
		subject_fail("stat A: %s", strerror(errno));
	if (st.st_ino != mst.st_ino)
		subject_fail("A's fd and A's mapping are two objects");
	if (st.st_size != 4 * PG)
		subject_fail("A's size %ld, not %ld", (long)st.st_size, 4 * PG);
	if (pread(fa, buf, 4, 3 * PG + 100) != 4 || memcmp(buf, "tail", 4) != 0)
		subject_fail("A's data past its mapping is lost");
	if (pread(fa, buf, 2, 0) != 2 || memcmp(buf, "A0", 2) != 0)
		subject_fail("A's first page through the fd");
	if (pwrite(fa, "X1", 2, 0) != 2 || memcmp(a, "X1", 2) != 0)
		subject_fail("a write through A's fd does not reach A's mapping");
	a[PG] = 'Y';
	if (pread(fa, buf, 1, PG) != 1 || buf[0] != 'Y')
		subject_fail("a write through A's mapping does not reach A's fd");

	/* B */
	if (fstat(fb, &st) != 0 || st.st_size != 5)
		subject_fail("B's size is not 5");
	if (lseek(fb, 0, SEEK_CUR) != 3)
		subject_fail("B's position is not 3");
	if ((fcntl(fb, F_GETFL) & O_APPEND) == 0)
		subject_fail("B lost O_APPEND");
	if (pread(fb, buf, 5, 0) != 5 || memcmp(buf, "hello", 5) != 0)
		subject_fail("B's contents");

	/* C */
	if (pwrite(fc, "parent", 6, 0) != 6)
		subject_fail("write C: %s", strerror(errno));
	subject_child_verdict(child, "C's child");
	if (pread(fc, buf, 5, PG) != 5 || memcmp(buf, "child", 5) != 0)
		subject_fail("the child's write through its mapping of C is not in the parent's fd");
	subject_pass();
}
