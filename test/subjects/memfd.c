/*
 * memfd: 20 memfd "ts-memfd" (MFD_ALLOW_SEALING), 5 pages + 100 bytes with
 * data in pages 0, 2 and the tail (holes between), sealed against shrink
 * and grow, offset 4103; 21 a second open file description of the same
 * inode (open of /proc/self/fd/20, O_RDONLY, offset 3); 22 memfd "plain"
 * (no sealing allowed) with 10 bytes, mode 0640; 23 a dup of 20; 19 the
 * only fd of memfd "wonly", write-only, holding "secret".
 * After SIGTERM: contents, holes, sizes, seals, offsets, access modes,
 * names; 20 and 21 share their inode (a write through 20 shows in 21) and
 * 23 shares 20's offset.
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

#define PAGE 4096
#define SIZE (5 * PAGE + 100)

static unsigned char want[SIZE], got[SIZE];

static void check_link(int fd, const char *name)
{
	char path[64], link[256], expect[256];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	snprintf(expect, sizeof(expect), "/memfd:%s (deleted)", name);
	if (strcmp(link, expect) != 0)
		subject_fail("fd %d is %s, wanted %s", fd, link, expect);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_fill(want, PAGE, 1);
	subject_fill(want + 2 * PAGE, PAGE, 2);
	subject_fill(want + 5 * PAGE, 100, 3);
	subject_at(20, memfd_create("ts-memfd", MFD_ALLOW_SEALING), "memfd 20");
	if (ftruncate(20, SIZE) != 0 || pwrite(20, want, PAGE, 0) != PAGE || pwrite(20, want + 2 * PAGE, PAGE, 2 * PAGE) != PAGE ||
	    pwrite(20, want + 5 * PAGE, 100, 5 * PAGE) != 100)
		subject_fail("fill 20");
	if (fcntl(20, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
		subject_fail("seals");
	lseek(20, PAGE + 7, SEEK_SET);
	subject_at(21, open("/proc/self/fd/20", O_RDONLY), "reopen 20");
	lseek(21, 3, SEEK_SET);
	subject_at(22, memfd_create("plain", 0), "memfd 22");
	if (write(22, "0123456789", 10) != 10 || fchmod(22, 0640) != 0)
		subject_fail("fill 22");
	subject_at(23, dup(20), "dup 20");
	int w = memfd_create("wonly", 0);
	char wpath[64];
	snprintf(wpath, sizeof(wpath), "/proc/self/fd/%d", w);
	if (w < 0 || write(w, "secret", 6) != 6)
		subject_fail("fill wonly");
	subject_at(19, open(wpath, O_WRONLY), "write-only memfd");
	close(w);

	subject_ready();
	subject_wait_term();

	struct stat s20, s21, s22;
	if (fstat(20, &s20) || fstat(21, &s21) || fstat(22, &s22))
		subject_fail("fstat");
	if (s20.st_size != SIZE || s22.st_size != 10)
		subject_fail("sizes %ld %ld", (long)s20.st_size, (long)s22.st_size);
	if (s20.st_ino != s21.st_ino || s20.st_ino == s22.st_ino)
		subject_fail("inode sharing lost");
	if ((s22.st_mode & 07777) != 0640)
		subject_fail("mode of 22 is %o", s22.st_mode & 07777);
	if (pread(20, got, SIZE, 0) != SIZE || memcmp(got, want, SIZE) != 0)
		subject_fail("contents of 20");
	if (fcntl(20, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW) || fcntl(22, F_GET_SEALS) != F_SEAL_SEAL)
		subject_fail("seals %d %d", fcntl(20, F_GET_SEALS), fcntl(22, F_GET_SEALS));
	if (ftruncate(20, PAGE) != -1 || errno != EPERM)
		subject_fail("F_SEAL_SHRINK not enforced");
	if (lseek(20, 0, SEEK_CUR) != PAGE + 7 || lseek(21, 0, SEEK_CUR) != 3 || lseek(22, 0, SEEK_CUR) != 10)
		subject_fail("offsets");
	if ((fcntl(21, F_GETFL) & O_ACCMODE) != O_RDONLY || (fcntl(20, F_GETFL) & O_ACCMODE) != O_RDWR)
		subject_fail("access modes");
	if (pwrite(20, "X", 1, PAGE) != 1 || pread(21, got, 1, PAGE) != 1 || got[0] != 'X')
		subject_fail("20 and 21 no longer share data");
	lseek(23, 11, SEEK_SET);
	if (lseek(20, 0, SEEK_CUR) != 11)
		subject_fail("23 is no longer a dup of 20");
	char buf[10];
	if (pread(22, buf, 10, 0) != 10 || memcmp(buf, "0123456789", 10) != 0)
		subject_fail("contents of 22");
	check_link(20, "ts-memfd");
	check_link(21, "ts-memfd");
	check_link(22, "plain");
	check_link(19, "wonly");
	int r = open("/proc/self/fd/19", O_RDONLY);
	if ((fcntl(19, F_GETFL) & O_ACCMODE) != O_WRONLY || r < 0 || pread(r, buf, 6, 0) != 6 || memcmp(buf, "secret", 6) != 0)
		subject_fail("write-only memfd");
	close(r);
	subject_pass();
}
