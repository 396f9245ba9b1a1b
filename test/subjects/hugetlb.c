/*
 * hugetlb: anonymous hugetlb memory (MAP_HUGETLB, 2 MiB pages) survives:
 * a private mapping with both its huge pages written, and a shared one
 * mapped before fork whose second huge page only the child wrote (the
 * parent, dumped first, never touched it: its data must still be saved).
 * A hugetlb memfd (MFD_HUGETLB) with one huge page written and one a hole,
 * open and mapped. After restore all are still hugetlb mappings of the same kind (VmFlags
 * "ht", KernelPageSize 2048 kB) and hold what each task wrote.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define HP (2UL << 20)
#define LEN (2 * HP)

static unsigned char *priv, *shared, *mfd_map;
static int mfd;

static int check_region(const unsigned char *p, size_t len, uint64_t seed)
{
	unsigned char *want = malloc(len);
	subject_fill(want, len, seed);
	int ok = memcmp(p, want, len) == 0;
	free(want);
	return ok;
}

/* "ht" in VmFlags and a 2048 kB page size for the mapping at addr. */
static const char *still_huge(const void *addr)
{
	char line[512];
	int in = 0, ht = 0, size = 0;
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return "cannot read smaps";
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) { /* a mapping's first line */
			in = s == (unsigned long)addr;
			continue;
		}
		if (!in)
			continue;
		if (strncmp(line, "KernelPageSize:", 15) == 0 && strstr(line, " 2048 kB"))
			size = 1;
		if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " ht"))
			ht = 1;
	}
	fclose(f);
	return ht && size ? NULL : "not a 2 MiB hugetlb mapping any more";
}

/* In the child after fork: its own copy of the second private huge page, and the shared huge page only it writes. */
static const char *child_setup(void *arg)
{
	subject_fill(priv + HP, HP, 3);
	subject_fill(shared + HP, HP, 4);
	return NULL;
}

static const char *child_check(void *arg)
{
	if (!check_region(priv, HP, 1) || !check_region(priv + HP, HP, 3))
		return "private hugetlb contents";
	if (!check_region(shared + HP, HP, 4))
		return "shared hugetlb: the huge page it wrote";
	const char *why = still_huge(priv);
	return why != NULL ? why : still_huge(shared);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	priv = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	shared = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		subject_fail("mmap MAP_HUGETLB: %s (free huge pages?)", strerror(errno));
	subject_fill(priv, LEN, 1);
	subject_fill(shared, HP, 2);
	mfd = memfd_create("huge", MFD_HUGETLB | MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, LEN) != 0)
		subject_fail("memfd MFD_HUGETLB: %s", strerror(errno));
	mfd_map = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mfd_map == MAP_FAILED)
		subject_fail("mmap hugetlb memfd: %s", strerror(errno));
	subject_fill(mfd_map, HP, 5);

	struct subject_child child = subject_fork_prepared("the child", child_setup, child_check, NULL);

	subject_ready();
	subject_wait_term();

	const char *why = still_huge(priv);
	if (why || (why = still_huge(shared)))
		subject_fail("%s", why);
	if (!check_region(priv, LEN, 1))
		subject_fail("private hugetlb contents");
	if (!check_region(shared, HP, 2))
		subject_fail("shared hugetlb: the parent's huge page");
	if (!check_region(shared + HP, HP, 4))
		subject_fail("shared hugetlb: the huge page only the child wrote");
	struct statfs sf;
	if (fstatfs(mfd, &sf) != 0 || sf.f_type != 0x958458f6 || sf.f_bsize != (long)HP)
		subject_fail("the memfd is no longer a 2 MiB hugetlb one");
	if ((why = still_huge(mfd_map)))
		subject_fail("memfd mapping: %s", why);
	if (!check_region(mfd_map, HP, 5))
		subject_fail("hugetlb memfd: its first huge page");
	unsigned char *hole = malloc(HP);
	if (pread(mfd, hole, HP, HP) != (ssize_t)HP)
		subject_fail("hugetlb memfd: read its hole: %s", strerror(errno));
	for (size_t i = 0; i < HP; i++)
		if (hole[i])
			subject_fail("hugetlb memfd: its hole holds data at %zu", i);
	free(hole);
	subject_child_verdict(child, "the child");
	subject_pass();
}
