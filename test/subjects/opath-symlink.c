/*
 * opath-symlink: O_PATH fds. 20: a symlink itself (O_PATH|O_NOFOLLOW);
 * 21: another symlink, then unlinked (a ghost symlink, owner 4242:4343);
 * 22: a regular file by O_PATH; 23: a directory by O_PATH|O_DIRECTORY.
 * After SIGTERM: 20 and 21 are symlinks with their targets (21 unlinked,
 * its owner kept), 22 and 23 still name their file and directory, and all
 * four are still O_PATH.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void check_link(int fd, const char *want, nlink_t nlink)
{
	struct stat st;
	char buf[256];
	if (fstat(fd, &st) || !S_ISLNK(st.st_mode))
		subject_fail("fd %d is not a symlink (mode 0%o)", fd, st.st_mode);
	if (st.st_nlink != nlink)
		subject_fail("fd %d: %lu links, want %lu", fd, (unsigned long)st.st_nlink, (unsigned long)nlink);
	ssize_t n = readlinkat(fd, "", buf, sizeof(buf) - 1);
	if (n < 0)
		subject_fail("readlinkat fd %d", fd);
	buf[n] = 0;
	if (strcmp(buf, want))
		subject_fail("fd %d points to %s, want %s", fd, buf, want);
}

static void check_opath(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || !(fl & O_PATH))
		subject_fail("fd %d is no longer O_PATH (flags 0%o)", fd, fl);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (mkdir("dir", 0755) || close(creat("dir/file", 0644)) ||
	    symlink("dir/file", "link") || symlink("/nowhere/at/all", "gone"))
		subject_fail("setup");
	subject_at(20, open("link", O_PATH | O_NOFOLLOW), "link");
	subject_at(21, open("gone", O_PATH | O_NOFOLLOW), "gone");
	if (fchownat(21, "", 4242, 4343, AT_EMPTY_PATH) || unlink("gone"))
		subject_fail("chown/unlink gone");
	subject_at(22, open("dir/file", O_PATH), "file");
	subject_at(23, open("dir", O_PATH | O_DIRECTORY), "dir");
	struct stat file_st;
	if (stat("dir/file", &file_st))
		subject_fail("stat");

	subject_ready();
	subject_wait_term();

	check_link(20, "dir/file", 1);
	check_link(21, "/nowhere/at/all", 0);
	struct stat st;
	if (fstat(21, &st) || st.st_uid != 4242 || st.st_gid != 4343)
		subject_fail("ghost symlink owner %d:%d", (int)st.st_uid, (int)st.st_gid);
	if (fstat(22, &st) || st.st_ino != file_st.st_ino)
		subject_fail("fd 22 is not dir/file");
	if (fstatat(23, "file", &st, 0) || st.st_ino != file_st.st_ino)
		subject_fail("fd 23 is not dir");
	for (int fd = 20; fd <= 23; fd++)
		check_opath(fd);
	subject_pass();
}
