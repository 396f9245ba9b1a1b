/*
 * pty: a pty pair inside the task, the session leader's controlling
 * terminal: 20 master (packet mode), 21 slave (opened without O_NOCTTY,
 * so it becomes the controlling terminal), raw-ish termios (no ECHO, no
 * ICANON, VMIN 1, 9600 baud) and a 33x101 window; /dev/tty at fd
 * --dev-tty-fd N (22; one below 20 comes before the terminal in fd order).
 * After SIGTERM: same pts number, termios, window size, controlling
 * terminal and foreground group, /dev/tty opens, bytes flow both ways
 * (master reads in packet mode).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char name[64];
	subject_openpty(20, 21, O_RDWR, name);
	if (tcgetsid(21) != getpid())
		subject_fail("slave did not become the controlling terminal");
	struct termios tio;
	tcgetattr(21, &tio);
	tio.c_lflag &= ~(ECHO | ICANON);
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	cfsetspeed(&tio, B9600);
	if (tcsetattr(21, TCSANOW, &tio))
		subject_fail("tcsetattr");
	struct winsize ws = { .ws_row = 33, .ws_col = 101 };
	if (ioctl(21, TIOCSWINSZ, &ws))
		subject_fail("TIOCSWINSZ");
	int one = 1;
	if (ioctl(20, TIOCPKT, &one))
		subject_fail("TIOCPKT");
	int devtty = (int)subject_opt_long("dev-tty-fd", 22);
	subject_at(devtty, open("/dev/tty", O_RDWR), "/dev/tty");

	subject_ready();
	subject_wait_term();

	char now[64], link[64];
	ssize_t n = readlink("/proc/self/fd/21", link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	if (ptsname_r(20, now, sizeof(now)) || strcmp(now, name) || strcmp(link, name))
		subject_fail("pts changed: was %s, master now %s, slave %s", name, now, link);
	struct termios got;
	if (tcgetattr(21, &got) || (got.c_lflag & (ECHO | ICANON)) || got.c_cc[VMIN] != 1 || cfgetospeed(&got) != B9600)
		subject_fail("termios lost: lflag 0%o", got.c_lflag);
	struct winsize gws;
	if (ioctl(21, TIOCGWINSZ, &gws) || gws.ws_row != 33 || gws.ws_col != 101)
		subject_fail("winsize %dx%d", gws.ws_row, gws.ws_col);
	if (tcgetsid(21) != getpid() || tcgetpgrp(21) != getpgrp())
		subject_fail("controlling terminal lost: sid %d pgrp %d", tcgetsid(21), tcgetpgrp(21));
	int t = open("/dev/tty", O_RDWR);
	if (t < 0 || !isatty(devtty))
		subject_fail("/dev/tty");
	close(t);
	if (write(20, "hi", 2) != 2)
		subject_fail("write master");
	char buf[16];
	if (read(21, buf, sizeof(buf)) != 2 || memcmp(buf, "hi", 2))
		subject_fail("slave read");
	if (write(21, "ping", 4) != 4)
		subject_fail("write slave");
	n = read(20, buf, sizeof(buf));
	if (n != 5 || buf[0] != TIOCPKT_DATA || memcmp(buf + 1, "ping", 4))
		subject_fail("master read in packet mode: %zd bytes", n);
	subject_pass();
}
