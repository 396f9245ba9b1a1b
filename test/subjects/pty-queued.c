/*
 * pty-queued: bytes waiting in a pty pair, both ways. Master 20, slave 21
 * (not a controlling terminal), canonical mode without echo. Typed into
 * the master and not read yet: two complete lines, a line ended with EOF
 * (^D), an empty EOF, a line holding a ^D quoted with LNEXT, and a line
 * still being typed. Written by the slave and not read yet by the master:
 * "out1\nout2" (ONLCR makes it out1\r\nout2).
 * After SIGTERM: the slave reads the same lines, in the same pieces, the
 * partial line is still partial (completed by a newline typed now), the
 * master reads what the slave wrote, and the termios is as it was.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static void expect_line(const char *want, size_t len)
{
	char buf[256];
	ssize_t n = read(21, buf, sizeof(buf));
	if (n != (ssize_t)len || memcmp(buf, want, len))
		subject_fail("slave read %zd bytes '%.*s', want %zu '%.*s'", n, (int)(n < 0 ? 0 : n), buf, len, (int)len, want);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char name[64];
	subject_openpty(20, 21, O_RDWR | O_NOCTTY, name);
	struct termios tio;
	tcgetattr(21, &tio);
	tio.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOKE);
	tio.c_lflag |= ICANON | IEXTEN;
	tio.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(21, TCSANOW, &tio))
		subject_fail("tcsetattr");
	/* typed: "line one\n" "two\n" "eof-line^D" "^D" "q^V^Dx\n" "partial" */
	static const char typed[] = "line one\ntwo\neof-line\004\004q\026\004x\npartial";
	if (write(20, typed, sizeof(typed) - 1) != (ssize_t)sizeof(typed) - 1)
		subject_fail("write master");
	if (write(21, "out1\nout2", 9) != 9)
		subject_fail("write slave");
	/* let the line discipline take both in */
	usleep(100000);

	subject_ready();
	subject_wait_term();

	struct termios got;
	if (tcgetattr(21, &got) || (got.c_lflag & ECHO) || !(got.c_lflag & ICANON) || got.c_lflag != tio.c_lflag ||
	    got.c_iflag != tio.c_iflag || got.c_oflag != tio.c_oflag || memcmp(got.c_cc, tio.c_cc, sizeof(tio.c_cc)))
		subject_fail("termios changed: lflag 0%o (was 0%o) iflag 0%o (was 0%o)", got.c_lflag, tio.c_lflag, got.c_iflag, tio.c_iflag);
	expect_line("line one\n", 9);
	expect_line("two\n", 4);
	expect_line("eof-line", 8);
	expect_line("", 0);
	expect_line("q\004x\n", 4);
	int fl = fcntl(21, F_GETFL);
	fcntl(21, F_SETFL, fl | O_NONBLOCK);
	char buf[64];
	if (read(21, buf, sizeof(buf)) >= 0)
		subject_fail("the partial line became readable");
	fcntl(21, F_SETFL, fl);
	if (write(20, "\n", 1) != 1)
		subject_fail("write master");
	expect_line("partial\n", 8);
	fcntl(20, F_SETFL, fcntl(20, F_GETFL) | O_NONBLOCK);
	ssize_t n = read(20, buf, sizeof(buf));
	if (n != 10 || memcmp(buf, "out1\r\nout2", 10))
		subject_fail("master read %zd bytes '%.*s'", n, (int)(n < 0 ? 0 : n), buf);
	if (read(20, buf, sizeof(buf)) >= 0)
		subject_fail("more bytes on the master");
	subject_pass();
}
