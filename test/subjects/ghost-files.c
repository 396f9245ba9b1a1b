/*
 * ghost-files: things whose names are gone. An fd on a regular file that
 * was unlinked (at an offset, with known contents), a shared mapping of
 * another unlinked file, and a working directory that was removed. After
 * restore: same contents and offset, still unlinked (nlink 0), the mapping
 * still shows the data and still writes through to the same file as the
 * fd on it, and the cwd is still a removed directory. Also a file renamed
 * while open: its fd follows the new name, at the same offset.
 */
#include "subject.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define A_BYTES 5000
#define B_BYTES 8192

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	static unsigned char a[A_BYTES], b[B_BYTES];
	subject_fill(a, sizeof a, 11);
	subject_fill(b, sizeof b, 22);

	int fa = subject_new_file("ghost-a.dat", 0640, a, sizeof a);
	int fb = subject_new_file("ghost-b.dat", 0600, b, sizeof b);
	lseek(fa, 1234, SEEK_SET);
	int fc = subject_new_file("before-rename.dat", 0600, "renamed-while-open", 18);
	if (lseek(fc, 8, SEEK_SET) != 8)
		subject_fail("renamed file setup");
	if (rename("before-rename.dat", "after-rename.dat"))
		subject_fail("rename");
	unsigned char *mb = mmap(NULL, B_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fb, 0);
	if (mb == MAP_FAILED)
		subject_fail("mmap");
	close(fb);
	if (unlink("ghost-a.dat") || unlink("ghost-b.dat"))
		subject_fail("unlink");
	if (mkdir("gone-dir", 0750) || chdir("gone-dir") || rmdir("../gone-dir"))
		subject_fail("removed cwd setup");

	subject_ready();
	subject_wait_term();

	struct stat st;
	if (fstat(fa, &st) || st.st_nlink != 0 || st.st_size != A_BYTES)
		subject_fail("fd is not an unlinked %d-byte file (nlink %ld size %ld)", A_BYTES, (long)st.st_nlink, (long)st.st_size);
	if (lseek(fa, 0, SEEK_CUR) != 1234)
		subject_fail("offset of the unlinked file changed");
	unsigned char back[A_BYTES];
	if (pread(fa, back, sizeof back, 0) != A_BYTES || memcmp(back, a, sizeof a))
		subject_fail("contents of the unlinked file changed");
	if (memcmp(mb, b, sizeof b))
		subject_fail("mapping of the unlinked file changed");
	char link[256], want[256];
	snprintf(want, sizeof want, "/proc/self/fd/%d", fc);
	ssize_t n = readlink(want, link, sizeof link - 1);
	link[n > 0 ? n : 0] = 0;
	if (n <= 0 || strstr(link, "after-rename.dat") == NULL)
		subject_fail("renamed file's fd points at %s", link);
	char rb[10] = { 0 };
	if (read(fc, rb, 10) != 10 || memcmp(rb, "while-open", 10))
		subject_fail("renamed file: offset or contents changed");
	if (stat(".", &st) || st.st_nlink != 0)
		subject_fail("cwd is no longer a removed directory (nlink %ld)", (long)st.st_nlink);
	subject_pass();
}
