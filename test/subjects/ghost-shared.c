/*
 * ghost-shared: unlinked inodes reached in many ways must come back as ONE
 * inode each, with holes, mode bits, owner and times:
 *  - a sparse file (data, 64 MiB hole, data) with suid/sgid bits, another
 *    owner and a set mtime: same size, same allocated blocks, same data;
 *    its apparent size is far over the default --ghost-limit;
 *  - one file open under two hard-link names, both unlinked;
 *  - one file open as an fd and mapped shared through another open;
 *  - one file opened separately by the parent and by a child;
 *  - an O_TMPFILE file (never had a name);
 *  - a removed directory held open inside a removed parent, and a removed
 *    cwd that is also held open as an fd (cwd and fd: the same inode, and
 *    /proc/self/cwd reads as before).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUN 8192
#define HOLE (64L << 20)
#define MAP_BYTES 4096

static int child_fd;

static const char *child_check(void *arg)
{
	(void)arg;
	static char why[128];
	char b[8] = { 0 };
	/* The parent wrote this through its own open of the same inode after the restore. */
	if (pread(child_fd, b, 7, 0) != 7 || memcmp(b, "parent!", 7)) {
		snprintf(why, sizeof why, "child's open of the unlinked file reads '%.7s', not the parent's write", b);
		return why;
	}
	return NULL;
}

static void same_inode(int a, int b, const char *what)
{
	struct stat sa, sb;
	if (fstat(a, &sa) || fstat(b, &sb))
		subject_fail("%s: fstat", what);
	if (sa.st_ino != sb.st_ino || sa.st_dev != sb.st_dev)
		subject_fail("%s: two inodes (%lu, %lu) where there was one", what, (unsigned long)sa.st_ino, (unsigned long)sb.st_ino);
	if (sa.st_nlink != 0)
		subject_fail("%s: nlink %ld, not unlinked", what, (long)sa.st_nlink);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	static unsigned char a[RUN], b[RUN];
	subject_fill(a, sizeof a, 31);
	subject_fill(b, sizeof b, 32);

	/* Sparse, suid/sgid, another owner, a known mtime. */
	int sp = open("sparse.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (sp < 0 || pwrite(sp, a, RUN, 0) != RUN || pwrite(sp, b, RUN, RUN + HOLE) != RUN)
		subject_fail("sparse setup");
	if (fchown(sp, 1234, 5678) || fchmod(sp, 06751))
		subject_fail("sparse owner/mode");
	struct timespec times[2] = { { 1000000000, 123456000 }, { 1100000000, 654321000 } };
	if (futimens(sp, times))
		subject_fail("futimens");
	struct stat sp0;
	if (fstat(sp, &sp0))
		subject_fail("fstat sparse");
	unlink("sparse.dat");

	/* Two names, two opens. */
	int h1 = open("name1", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (h1 < 0 || link("name1", "name2"))
		subject_fail("hard links");
	int h2 = open("name2", O_RDWR);
	if (h2 < 0 || write(h1, "hardlinked", 10) != 10)
		subject_fail("second name");
	unlink("name1");
	unlink("name2");

	/* An fd and a shared mapping through another open. */
	int mf = open("mapped", O_RDWR | O_CREAT | O_TRUNC, 0644);
	int mo = open("mapped", O_RDWR);
	if (mf < 0 || mo < 0 || ftruncate(mf, MAP_BYTES))
		subject_fail("mapped setup");
	char *map = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mo, 0);
	if (map == MAP_FAILED)
		subject_fail("mmap");
	close(mo);
	unlink("mapped");

	/* Parent and child, each with its own open. */
	int pf = open("shared-by-two", O_RDWR | O_CREAT | O_TRUNC, 0644);
	child_fd = open("shared-by-two", O_RDWR);
	if (pf < 0 || child_fd < 0 || write(pf, "before!", 7) != 7)
		subject_fail("parent/child setup");
	struct subject_child child = subject_fork_checker(child_check, NULL);
	close(child_fd);
	unlink("shared-by-two");

	/* O_TMPFILE. */
	int tf = open(".", O_TMPFILE | O_RDWR, 0640);
	if (tf < 0 || write(tf, "tmpfile-data", 12) != 12)
		subject_fail("O_TMPFILE: %m");

	/* A removed directory in a removed parent; a removed cwd also open as an fd. */
	if (mkdir("outer", 0750) || mkdir("outer/inner", 0710))
		subject_fail("mkdir");
	int inner = open("outer/inner", O_DIRECTORY | O_RDONLY);
	if (inner < 0 || rmdir("outer/inner") || rmdir("outer"))
		subject_fail("removed dirs");
	if (mkdir("cwd-dir", 0700))
		subject_fail("mkdir cwd");
	int cwdfd = open("cwd-dir", O_DIRECTORY | O_RDONLY);
	if (cwdfd < 0 || chdir("cwd-dir") || rmdir("../cwd-dir"))
		subject_fail("removed cwd");
	char cwd0[512], cwd1[512];
	ssize_t n0 = readlink("/proc/self/cwd", cwd0, sizeof cwd0 - 1);
	cwd0[n0 > 0 ? n0 : 0] = 0;

	subject_ready();
	subject_wait_term();

	struct stat st;
	if (fstat(sp, &st))
		subject_fail("fstat sparse after");
	if (st.st_size != sp0.st_size || st.st_blocks != sp0.st_blocks)
		subject_fail("sparse file: size %ld blocks %ld, was %ld blocks %ld", (long)st.st_size, (long)st.st_blocks, (long)sp0.st_size, (long)sp0.st_blocks);
	if ((st.st_mode & 07777) != 06751 || st.st_uid != 1234 || st.st_gid != 5678)
		subject_fail("sparse file: mode 0%o owner %d:%d", st.st_mode & 07777, st.st_uid, st.st_gid);
	if (st.st_mtim.tv_sec != times[1].tv_sec || st.st_mtim.tv_nsec / 1000 != times[1].tv_nsec / 1000)
		subject_fail("sparse file: mtime %ld.%09ld", (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	static unsigned char back[RUN];
	if (pread(sp, back, RUN, 0) != RUN || memcmp(back, a, RUN) || pread(sp, back, RUN, RUN + HOLE) != RUN || memcmp(back, b, RUN))
		subject_fail("sparse file: data changed");
	if (lseek(sp, 0, SEEK_HOLE) != RUN)
		subject_fail("sparse file: the hole after the first run is gone");

	same_inode(h1, h2, "two hard-link names");
	char hb[11] = { 0 };
	if (pread(h2, hb, 10, 0) != 10 || memcmp(hb, "hardlinked", 10))
		subject_fail("second name reads '%s'", hb);

	if (pwrite(mf, "through-fd", 10, 100) != 10 || memcmp(map + 100, "through-fd", 10))
		subject_fail("fd and mapping are no longer the same file");

	if (pwrite(pf, "parent!", 7, 0) != 7)
		subject_fail("parent write");
	subject_child_verdict(child, "parent and child opens of one unlinked file");

	char tb[13] = { 0 };
	if (fstat(tf, &st) || st.st_nlink != 0 || pread(tf, tb, 12, 0) != 12 || strcmp(tb, "tmpfile-data"))
		subject_fail("O_TMPFILE file: nlink %ld data '%s'", (long)st.st_nlink, tb);
	if (pwrite(tf, "more", 4, 12) != 4)
		subject_fail("O_TMPFILE file is not writable: %m");

	if (fstat(inner, &st) || !S_ISDIR(st.st_mode) || st.st_nlink != 0 || (st.st_mode & 07777) != 0710)
		subject_fail("removed inner dir: mode 0%o nlink %ld", st.st_mode, (long)st.st_nlink);
	struct stat sc, sf;
	if (stat(".", &sc) || fstat(cwdfd, &sf) || sc.st_ino != sf.st_ino || sc.st_nlink != 0)
		subject_fail("removed cwd and its fd are not the same removed dir");
	ssize_t n1 = readlink("/proc/self/cwd", cwd1, sizeof cwd1 - 1);
	cwd1[n1 > 0 ? n1 : 0] = 0;
	if (strcmp(cwd0, cwd1))
		subject_fail("cwd reads %s, was %s", cwd1, cwd0);
	subject_pass();
}
