/*
 * utf8-paths: names that are not ASCII, as any user's files may have:
 *   cwd       the directory "dïr-é" (two-byte characters)
 *   fd 10     "dïr-é/fïle-ü.txt", O_RDWR, offset 3, and a MAP_SHARED mapping of it
 *   fd 11     "gône-😀.txt" (a four-byte character), unlinked while open
 * After SIGTERM: the cwd, fd 10 and the mapping are the same file under
 * the same name (fstat against stat by name), the offset and the contents
 * are kept, fd 11 is still unlinked with its contents.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_NAME "d\xc3\xafr-\xc3\xa9"
#define FILE_NAME "f\xc3\xafle-\xc3\xbc.txt"
#define GHOST_NAME "g\xc3\xb4ne-\xf0\x9f\x98\x80.txt"

static const char text[] = "the contents of a file with a name in UTF-8";
static const char ghost_text[] = "an unlinked file with an emoji in its name";

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char top[PATH_MAX];
	if (getcwd(top, sizeof(top)) == NULL)
		subject_fail("getcwd");
	if (mkdir(DIR_NAME, 0700) != 0)
		subject_fail("mkdir " DIR_NAME);
	subject_at(10, subject_new_file(DIR_NAME "/" FILE_NAME, 0600, text, sizeof(text)), "open/dup2 " FILE_NAME);
	lseek(10, 3, SEEK_SET);
	char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 10, 0);
	if (map == MAP_FAILED)
		subject_fail("mmap " FILE_NAME);
	subject_at(11, subject_new_file(GHOST_NAME, 0600, ghost_text, sizeof(ghost_text)), "open/dup2 " GHOST_NAME);
	if (unlink(GHOST_NAME) != 0)
		subject_fail("unlink " GHOST_NAME);
	if (chdir(DIR_NAME) != 0)
		subject_fail("chdir " DIR_NAME);

	subject_ready();
	subject_wait_term();

	char cwd[PATH_MAX], want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/%s", top, DIR_NAME);
	if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, want) != 0)
		subject_fail("cwd is %s, want %s", cwd, want);
	struct stat byfd, byname;
	if (fstat(10, &byfd) != 0 || stat(FILE_NAME, &byname) != 0 || byfd.st_ino != byname.st_ino || byfd.st_dev != byname.st_dev)
		subject_fail("fd 10 is not " FILE_NAME);
	if (lseek(10, 0, SEEK_CUR) != 3)
		subject_fail("fd 10 offset %lld, want 3", (long long)lseek(10, 0, SEEK_CUR));
	if (memcmp(map, text, sizeof(text)) != 0)
		subject_fail("the mapping of " FILE_NAME " lost its contents");
	map[0] = 'T';
	char c = 0;
	if (pread(10, &c, 1, 0) != 1 || c != 'T')
		subject_fail("the mapping is not shared with " FILE_NAME " any more");
	char buf[sizeof(ghost_text)];
	if (fstat(11, &byfd) != 0 || byfd.st_nlink != 0)
		subject_fail("fd 11 (" GHOST_NAME ") is linked again");
	if (pread(11, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) || memcmp(buf, ghost_text, sizeof(buf)) != 0)
		subject_fail("fd 11 (" GHOST_NAME ") lost its contents");
	subject_pass();
}
