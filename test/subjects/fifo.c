/*
 * fifo: named pipes in the work dir, opened in every mode, with data.
 *   20 f1 O_RDWR, 100 bytes queued, buffer grown to 128 KiB
 *   21 f2 O_RDONLY and 22 f2 O_WRONLY|O_NONBLOCK, 5000 bytes queued
 *   23 f3 O_WRONLY alone (its reader closed), 10 bytes queued
 *   24 f4 O_RDONLY alone (no writer), empty
 *   25 f5 O_RDONLY and 26 f5 O_WRONLY, 10 bytes queued, then f5 unlinked
 *      (two opens of one unlinked FIFO: still one pipe, mode 0604)
 * After SIGTERM the bytes come back in order and each fd keeps its mode.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned char a[100], b[5000], c[10], got[8192];

static void expect_fl(int fd, int want, const char *what)
{
	int fl = fcntl(fd, F_GETFL);
	if ((fl & (O_ACCMODE | O_NONBLOCK)) != want)
		subject_fail("%s: flags %#x, want %#x", what, fl, want);
}

static void expect_read(int fd, const void *want, size_t len, const char *what)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = read(fd, got + off, len - off);
		if (n <= 0)
			subject_fail("%s: read %zd errno %d after %zu bytes", what, n, errno, off);
		off += (size_t)n;
	}
	if (memcmp(got, want, len) != 0)
		subject_fail("%s: bytes differ", what);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_fill(a, sizeof(a), 11);
	subject_fill(b, sizeof(b), 12);
	subject_fill(c, sizeof(c), 13);
	const char *names[] = { "f1", "f2", "f3", "f4" };
	for (int i = 0; i < 4; i++)
		if (mkfifo(names[i], 0640) != 0)
			subject_fail("mkfifo %s: errno %d", names[i], errno);

	subject_at(20, open("f1", O_RDWR), "f1");
	if (fcntl(20, F_SETPIPE_SZ, 128 << 10) < 0)
		subject_fail("F_SETPIPE_SZ");
	if (write(20, a, sizeof(a)) != sizeof(a))
		subject_fail("write f1");

	subject_at(21, open("f2", O_RDONLY | O_NONBLOCK), "f2 reader");
	fcntl(21, F_SETFL, 0);
	subject_at(22, open("f2", O_WRONLY | O_NONBLOCK), "f2 writer");
	if (write(22, b, sizeof(b)) != sizeof(b))
		subject_fail("write f2");

	int r3 = open("f3", O_RDONLY | O_NONBLOCK);
	subject_at(23, open("f3", O_WRONLY), "f3 writer");
	if (write(23, c, sizeof(c)) != sizeof(c))
		subject_fail("write f3");
	close(r3);

	subject_at(24, open("f4", O_RDONLY | O_NONBLOCK), "f4 reader");
	fcntl(24, F_SETFL, 0);

	if (mkfifo("f5", 0604) != 0)
		subject_fail("mkfifo f5");
	subject_at(25, open("f5", O_RDONLY | O_NONBLOCK), "f5 reader");
	fcntl(25, F_SETFL, 0);
	subject_at(26, open("f5", O_WRONLY), "f5 writer");
	if (write(26, c, sizeof(c)) != sizeof(c) || unlink("f5"))
		subject_fail("f5 setup");

	subject_ready();
	subject_wait_term();

	expect_fl(20, O_RDWR, "fd 20");
	expect_fl(21, O_RDONLY, "fd 21");
	expect_fl(22, O_WRONLY | O_NONBLOCK, "fd 22");
	expect_fl(23, O_WRONLY, "fd 23");
	expect_fl(24, O_RDONLY, "fd 24");
	if (fcntl(20, F_GETPIPE_SZ) != 128 << 10)
		subject_fail("f1: size %d", fcntl(20, F_GETPIPE_SZ));
	expect_read(20, a, sizeof(a), "f1");
	expect_read(21, b, sizeof(b), "f2");
	int r = open("f3", O_RDONLY | O_NONBLOCK);
	if (r < 0)
		subject_fail("f3: reopen errno %d", errno);
	expect_read(r, c, sizeof(c), "f3");
	int w = open("f4", O_WRONLY | O_NONBLOCK);
	if (w < 0)
		subject_fail("f4: no reader (errno %d)", errno);
	if (write(w, "ping", 4) != 4)
		subject_fail("f4 write");
	expect_read(24, "ping", 4, "f4");
	expect_read(25, c, sizeof(c), "unlinked f5 (queued)");
	if (write(26, "pong", 4) != 4)
		subject_fail("unlinked f5: write");
	expect_read(25, "pong", 4, "unlinked f5: writer and reader are one pipe");
	struct stat st;
	if (fstat(25, &st) != 0 || !S_ISFIFO(st.st_mode) || st.st_nlink != 0 || (st.st_mode & 0777) != 0604)
		subject_fail("f5: not an unlinked 0604 FIFO");
	if (fstat(20, &st) != 0 || !S_ISFIFO(st.st_mode) || (st.st_mode & 0777) != 0640)
		subject_fail("f1: not the FIFO of the work dir");
	subject_pass();
}
