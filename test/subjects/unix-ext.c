/*
 * unix-ext: fd 20 is a datagram socket connected to a socket outside the
 * dumped tree (--peer PATH, bound by the test). It sends "before" at once
 * and "after" on SIGTERM: the peer must get both, before and after a
 * restore with --ext-unix-sk, and "before" only once when a dump is refused.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	const char *peer = subject_opt("peer", "");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(peer) == 0 || strlen(peer) >= sizeof(sa.sun_path))
		subject_fail("--peer PATH needed");
	strcpy(sa.sun_path, peer);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || dup2(fd, 20) != 20)
		subject_fail("connect %s: errno %d", peer, errno);
	if (fd != 20)
		close(fd);
	if (send(20, "before", 6, 0) != 6)
		subject_fail("send before: errno %d", errno);
	subject_ready();
	subject_wait_term();
	if (send(20, "after", 5, 0) != 5)
		subject_fail("send after: errno %d", errno);
	subject_pass();
}
