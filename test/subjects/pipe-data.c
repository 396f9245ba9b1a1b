/*
 * pipe-data: pipes with bytes in flight, ends held alone, buffer sizes.
 *   20/21 pipe, 100 pattern bytes queued; 21 O_NONBLOCK; 26 = dup(20);
 *         29 = /proc/self/fd/20 reopened (its own description, O_NONBLOCK)
 *   22    read end only of a full 64 KiB pipe (writer closed: EOF after)
 *   23    write end only (reader closed: writes fail with EPIPE)
 *   24/25 pipe grown to 1 MiB and filled completely
 *   27/28 empty pipe
 * After SIGTERM every byte is read back in order and each end behaves.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BIG (1 << 20)

static unsigned char small[100], full[65536];
static unsigned char *big, *got;

static void pipe_at(int r, int w)
{
	int p[2];
	if (pipe(p) != 0)
		subject_fail("pipe: errno %d", errno);
	/* park both first so dup2 never lands on the other end */
	int hr = fcntl(p[0], F_DUPFD, 100), hw = fcntl(p[1], F_DUPFD, 100);
	close(p[0]);
	close(p[1]);
	subject_at(r, hr, "pipe read end");
	subject_at(w, hw, "pipe write end");
}

static void write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n <= 0)
			subject_fail("write fd %d: errno %d", fd, errno);
		p += n;
		len -= (size_t)n;
	}
}

static void read_exact(int fd, void *buf, size_t len, const char *what)
{
	unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			subject_fail("%s: read returned %zd errno %d with %zu bytes missing", what, n, errno, len);
		p += n;
		len -= (size_t)n;
	}
}

static void expect_fl(int fd, int want, const char *what)
{
	int fl = fcntl(fd, F_GETFL);
	if ((fl & (O_ACCMODE | O_NONBLOCK)) != want)
		subject_fail("%s: flags %#x, want %#x", what, fl, want);
}

int main(int argc, char **argv)
{
	char path[64];
	subject_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	subject_fill(small, sizeof(small), 1);
	subject_fill(full, sizeof(full), 2);
	big = malloc(BIG);
	got = malloc(BIG);
	if (!big || !got)
		subject_fail("malloc");
	subject_fill(big, BIG, 3);

	pipe_at(20, 21);
	write_all(21, small, sizeof(small));
	fcntl(21, F_SETFL, O_NONBLOCK);
	subject_at(26, dup(20), "dup");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", 20);
	subject_at(29, open(path, O_RDONLY | O_NONBLOCK), "reopen");

	pipe_at(22, 30);
	write_all(30, full, sizeof(full));
	close(30);

	pipe_at(30, 23);
	close(30);

	pipe_at(24, 25);
	if (fcntl(25, F_SETPIPE_SZ, BIG) != BIG)
		subject_fail("F_SETPIPE_SZ 1 MiB: errno %d", errno);
	write_all(25, big, BIG);

	pipe_at(27, 28);

	subject_ready();
	subject_wait_term();

	expect_fl(20, O_RDONLY, "fd 20");
	expect_fl(21, O_WRONLY | O_NONBLOCK, "fd 21");
	expect_fl(26, O_RDONLY, "fd 26 (dup of 20)");
	expect_fl(29, O_RDONLY | O_NONBLOCK, "fd 29 (reopened 20)");
	read_exact(26, got, 50, "fd 26");
	read_exact(20, got + 50, 50, "fd 20");
	if (memcmp(got, small, sizeof(small)) != 0)
		subject_fail("pipe 20: bytes differ");
	if (read(29, got, 1) != -1 || errno != EAGAIN)
		subject_fail("pipe 20 should be empty now");

	if (fcntl(22, F_GETPIPE_SZ) != 65536)
		subject_fail("pipe 22: size %d", fcntl(22, F_GETPIPE_SZ));
	read_exact(22, got, sizeof(full), "fd 22");
	if (memcmp(got, full, sizeof(full)) != 0)
		subject_fail("pipe 22: bytes differ");
	if (read(22, got, 1) != 0)
		subject_fail("pipe 22: no EOF after the data (a writer is left open)");

	if (write(23, "x", 1) != -1 || errno != EPIPE)
		subject_fail("pipe 23: write should fail with EPIPE, errno %d", errno);

	if (fcntl(24, F_GETPIPE_SZ) != BIG)
		subject_fail("pipe 24: size %d", fcntl(24, F_GETPIPE_SZ));
	read_exact(24, got, BIG, "fd 24");
	if (memcmp(got, big, BIG) != 0)
		subject_fail("pipe 24: bytes differ");

	fcntl(27, F_SETFL, O_NONBLOCK);
	if (read(27, got, 1) != -1 || errno != EAGAIN)
		subject_fail("pipe 27 should be empty");
	write_all(28, "hello", 5);
	read_exact(27, got, 5, "fd 27");
	if (memcmp(got, "hello", 5) != 0)
		subject_fail("pipe 27/28 do not connect");
	subject_pass();
}
