/*
 * link-remap (dumped with --link-remap): a file open under a name that was
 * unlinked while another hard link keeps the inode alive ("name (deleted)"
 * with nlink 1). After restore the fd is on that same inode (same dev/ino
 * as the surviving name), with its data and offset, and the temporary
 * link_remap.* name the dump made is gone again.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int fd = open("first-name", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || link("first-name", "second-name") || unlink("first-name"))
		subject_fail("setup");
	if (write(fd, "linked-elsewhere", 16) != 16 || lseek(fd, 7, SEEK_SET) != 7)
		subject_fail("write");

	subject_ready();
	subject_wait_term();

	struct stat a, b;
	if (fstat(fd, &a) || stat("second-name", &b))
		subject_fail("stat");
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		subject_fail("fd is no longer on the inode of second-name");
	if (a.st_nlink != 1)
		subject_fail("nlink is %ld, not 1: a temporary name is left", (long)a.st_nlink);
	char buf[10] = { 0 };
	if (read(fd, buf, 9) != 9 || memcmp(buf, "elsewhere", 9))
		subject_fail("offset or data changed: '%s'", buf);
	DIR *d = opendir(".");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "link_remap.", 11) == 0)
			subject_fail("%s left behind", e->d_name);
	subject_pass();
}
