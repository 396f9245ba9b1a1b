/*
 * pty-ctty: controlling terminals held by no fd. The parent (a session
 * leader) holds masters 20 and 21. Pty 20's slave is the parent's own
 * controlling terminal, its fd closed at once; a member of the parent's
 * session forked after that opens /dev/tty after the restore. A child
 * starts its own session whose controlling terminal is pty 21's slave,
 * fd closed too. Pty 22 (owner 4242:4343, mode 0600) keeps a slave fd at 23.
 * After SIGTERM: TIOCGSID on each master names the right session, the
 * parent and the member open /dev/tty and find pty 20's slave, the foreground groups are
 * the leaders', pty 22's slave kept its owner, and closing master 21 hangs up
 * the child's session: the child gets SIGHUP.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int open_pair(int at, char *name, size_t len)
{
	subject_at(at, posix_openpt(O_RDWR | O_NOCTTY), "ptmx");
	if (grantpt(at) || unlockpt(at) || ptsname_r(at, name, len))
		subject_fail("pty %d: unlockpt/ptsname", at);
	return at;
}

static dev_t rdev_of(const char *path)
{
	struct stat st;
	if (stat(path, &st))
		subject_fail("stat %s", path);
	return st.st_rdev;
}

static volatile sig_atomic_t got_hup;
static void on_hup(int sig)
{
	(void)sig;
	got_hup = 1;
}

/* The terminal /dev/tty stands for (its own inode is /dev/tty's). */
static unsigned int ctty_dev(void)
{
	int fd = open("/dev/tty", O_RDWR);
	unsigned int dev = 0;
	if (fd < 0)
		return 0;
	if (ioctl(fd, TIOCGDEV, &dev))
		dev = 0;
	close(fd);
	return dev;
}

static const char *member_check(void *arg)
{
	static char why[128];
	unsigned int dev = ctty_dev();
	if (dev != (unsigned int)*(dev_t *)arg) {
		snprintf(why, sizeof(why), "the member's /dev/tty is %x, not pty 20's slave", dev);
		return why;
	}
	return NULL;
}

static const char *leader_check(void *arg)
{
	(void)arg;
	/* The parent closes master 21 before sending SIGTERM: the hangup came first. */
	return got_hup ? NULL : "no SIGHUP when the master of the session's terminal was closed";
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char a[64], b[64], c[64];
	open_pair(20, a, sizeof(a));
	open_pair(21, b, sizeof(b));
	open_pair(22, c, sizeof(c));
	int s = open(a, O_RDWR); /* no O_NOCTTY: becomes our controlling terminal */
	if (s < 0 || tcgetsid(s) != getpid())
		subject_fail("pty 20 did not become the controlling terminal");
	close(s);
	dev_t a_rdev = rdev_of(a);
	struct subject_child member = subject_fork_checker(member_check, &a_rdev);

	signal(SIGHUP, on_hup);
	int ready[2];
	if (pipe(ready))
		subject_fail("pipe");
	pid_t leader = fork();
	if (leader == 0) {
		close(ready[0]);
		if (setsid() < 0)
			_exit(3);
		int t = open(b, O_RDWR);
		if (t < 0)
			_exit(4);
		close(t);
		close(ready[1]);
		close(20);
		close(21);
		close(22);
		subject_term = 0;
		subject_wait_term();
		_exit(leader_check(NULL) == NULL ? 0 : 1);
	}
	close(ready[1]);
	char x;
	if (read(ready[0], &x, 1) != 0)
		subject_fail("child setup");
	close(ready[0]);
	signal(SIGHUP, SIG_IGN);

	subject_at(23, open(c, O_RDWR | O_NOCTTY), "pty 22 slave");
	if (fchown(23, 4242, 4343) || fchmod(23, 0600))
		subject_fail("fchown pty 22");

	subject_ready();
	subject_wait_term();

	pid_t sid;
	if (ioctl(20, TIOCGSID, &sid) || sid != getpid())
		subject_fail("pty 20 controls session %d, not ours (%d)", sid, getpid());
	if (ioctl(21, TIOCGSID, &sid) || sid != leader)
		subject_fail("pty 21 controls session %d, not the child's (%d)", sid, leader);
	pid_t pg;
	if (ioctl(20, TIOCGPGRP, &pg) || pg != getpgrp())
		subject_fail("pty 20 foreground group %d", pg);
	if (ioctl(21, TIOCGPGRP, &pg) || pg != leader)
		subject_fail("pty 21 foreground group %d", pg);
	if (ctty_dev() != (unsigned int)a_rdev)
		subject_fail("/dev/tty is %x, not pty 20's slave", ctty_dev());
	struct stat st;
	if (fstat(23, &st) || st.st_uid != 4242 || st.st_gid != 4343)
		subject_fail("pty 22 slave owner %d:%d", (int)st.st_uid, (int)st.st_gid);
	subject_child_verdict(member, "session member");
	close(21);
	usleep(20000);
	kill(leader, SIGTERM);
	int status;
	if (waitpid(leader, &status, 0) != leader || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		subject_fail("the child session leader: %s", WIFEXITED(status) ? "no SIGHUP" : "killed");
	subject_pass();
}
