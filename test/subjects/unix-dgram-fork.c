/*
 * unix-dgram-fork: datagram sockets talking by name across a fork.
 *   parent: fd 20 bound to srv.sock; "hi" from the child is queued on it
 *   child:  fd 21 bound to cli.sock and connected to srv.sock; fd 22 bound to
 *           in.sock, waiting in recv()
 *   parent: fd 22 connected to the child's in.sock (its peer is restored after it)
 *   then srv.sock is unlinked and a FIFO made at that name (fd 23): the
 *   child's connection to the nameless server must still come back
 *   parent: fd 24 bound to self.sock and connected to itself, "me" queued
 * After SIGTERM the parent reads "hi", sends "go" through 22; the child
 * answers "bye" through its connection and exits 0.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static socklen_t addr_of(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	strcpy(sa->sun_path, path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static int bound_at(int want, const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, addr_of(&sa, path)) != 0 || dup2(fd, want) != want)
		return -1;
	close(fd);
	return want;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	struct sockaddr_un sa;
	if (bound_at(20, "srv.sock") < 0)
		subject_fail("bind srv.sock: errno %d", errno);
	pid_t child = subject_fork_quiet();
	if (child == 0) {
		close(20);
		if (bound_at(21, "cli.sock") < 0 || connect(21, (struct sockaddr *)&sa, addr_of(&sa, "srv.sock")) != 0 ||
		    bound_at(22, "in.sock") < 0)
			_exit(2);
		if (send(21, "hi", 2, 0) != 2)
			_exit(3);
		subject_answer_and_exit(22, "go", 21, "bye");
	}
	struct pollfd p = { .fd = 20, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		subject_fail("no hi from the child");
	int c = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, addr_of(&sa, "in.sock")) != 0 || dup2(c, 22) != 22)
		subject_fail("connect in.sock: errno %d", errno);
	close(c);
	if (bound_at(24, "self.sock") < 0 || connect(24, (struct sockaddr *)&sa, addr_of(&sa, "self.sock")) != 0 || send(24, "me", 2, 0) != 2)
		subject_fail("self-connected socket: errno %d", errno);
	if (unlink("srv.sock") || mkfifo("srv.sock", 0600))
		subject_fail("FIFO over the server's name: errno %d", errno);
	int f = open("srv.sock", O_RDWR);
	if (f < 0 || dup2(f, 23) != 23)
		subject_fail("open FIFO");
	close(f);
	subject_ready();
	subject_wait_term();
	subject_expect_recv(20, "hi", "hi from the child");
	if (send(22, "go", 2, 0) != 2)
		subject_fail("send to in.sock: errno %d", errno);
	subject_expect_recv(20, "bye", "bye from the child");
	subject_reap_ok(child, "the child");
	subject_expect_recv(24, "me", "datagram queued to itself");
	if (send(24, "again", 5, 0) != 5)
		subject_fail("self-connected socket lost its peer: errno %d", errno);
	subject_expect_recv(24, "again", "datagram sent to itself after restore");
	struct stat fst;
	if (fstat(23, &fst) || !S_ISFIFO(fst.st_mode) || stat("srv.sock", &fst) || !S_ISFIFO(fst.st_mode))
		subject_fail("the FIFO at srv.sock is gone");
	DIR *d = opendir(".");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL)
		if (strstr(e->d_name, "cr-usk"))
			subject_fail("temporary name %s left behind", e->d_name);
	subject_pass();
}
