/*
 * file-offsets: files at fixed fd numbers with known offsets and flags.
 *   10 data.bin O_RDWR, offset 1234      11 append.log O_WRONLY|O_APPEND
 *   12 "." O_DIRECTORY|O_CLOEXEC         13 /dev/null O_WRONLY
 *   14 /dev/zero O_RDONLY|O_CLOEXEC      15 /dev/urandom O_RDONLY
 * After SIGTERM: offsets (lseek), F_GETFL, F_GETFD, identity (fstat) and
 * that reads and writes still do the right thing.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static unsigned char pattern[8192];

static void expect(int fd, int flags, int cloexec, const char *what)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	int mask = O_ACCMODE | O_APPEND | O_DIRECTORY;
	if (fl < 0 || (fl & mask) != flags)
		subject_fail("%s: F_GETFL 0%o, want 0%o", what, fl & mask, flags);
	if (fdfl < 0 || !!(fdfl & FD_CLOEXEC) != cloexec)
		subject_fail("%s: FD_CLOEXEC %d, want %d", what, fdfl, cloexec);
}

static void expect_chr(int fd, unsigned maj, unsigned min, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != maj || minor(st.st_rdev) != min)
		subject_fail("%s: not char device %u:%u", what, maj, min);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_fill(pattern, sizeof(pattern), 99);
	subject_at(10, subject_new_file("data.bin", 0600, pattern, sizeof(pattern)), "open/dup2");
	lseek(10, 1234, SEEK_SET);
	int fd = open("append.log", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	if (write(fd, pattern, 100) != 100)
		subject_fail("write append.log");
	subject_at(11, fd, "open/dup2");
	subject_at(12, open(".", O_RDONLY | O_DIRECTORY), "open/dup2");
	fcntl(12, F_SETFD, FD_CLOEXEC);
	subject_at(13, open("/dev/null", O_WRONLY), "open/dup2");
	subject_at(14, open("/dev/zero", O_RDONLY), "open/dup2");
	fcntl(14, F_SETFD, FD_CLOEXEC);
	subject_at(15, open("/dev/urandom", O_RDONLY), "open/dup2");

	subject_ready();
	subject_wait_term();

	expect(10, O_RDWR, 0, "data.bin");
	expect(11, O_WRONLY | O_APPEND, 0, "append.log");
	expect(12, O_RDONLY | O_DIRECTORY, 1, "dir");
	expect(13, O_WRONLY, 0, "/dev/null");
	expect(14, O_RDONLY, 1, "/dev/zero");
	expect(15, O_RDONLY, 0, "/dev/urandom");

	off_t off = lseek(10, 0, SEEK_CUR);
	if (off != 1234)
		subject_fail("data.bin offset %lld, want 1234", (long long)off);
	unsigned char buf[64];
	if (read(10, buf, 16) != 16 || memcmp(buf, pattern + 1234, 16) != 0 || lseek(10, 0, SEEK_CUR) != 1250)
		subject_fail("data.bin read at 1234 wrong");

	struct stat st;
	if (write(11, "x", 1) != 1 || fstat(11, &st) != 0 || st.st_size != 101 || lseek(11, 0, SEEK_CUR) != 101)
		subject_fail("append.log: append did not land at the end (size %lld)", (long long)st.st_size);

	struct stat d1, d2;
	if (fstat(12, &d1) != 0 || stat(".", &d2) != 0 || !S_ISDIR(d1.st_mode) || d1.st_ino != d2.st_ino || d1.st_dev != d2.st_dev)
		subject_fail("dir fd is not the work dir");

	expect_chr(13, 1, 3, "/dev/null");
	expect_chr(14, 1, 5, "/dev/zero");
	expect_chr(15, 1, 9, "/dev/urandom");
	if (write(13, buf, 10) != 10)
		subject_fail("/dev/null write");
	memset(buf, 0xff, sizeof(buf));
	if (read(14, buf, 32) != 32 || buf[0] != 0 || buf[31] != 0)
		subject_fail("/dev/zero read");
	if (read(15, buf, 32) != 32)
		subject_fail("/dev/urandom read");
	subject_pass();
}
