/*
 * cow-fork: pages a parent wrote before fork and nobody wrote since are one
 * physical page in parent and child (copy-on-write), and must be one page
 * again after a restore; pages either side changed after fork keep their
 * own contents. Private anonymous memory and the COW pages of a private
 * file mapping; in the child, one page changed in a region both later made
 * read-only, one region made read-only by the child alone, and one page
 * dropped (MADV_DONTNEED: zero in the child, data in the parent).
 * The parent checks sharing by physical frame (/proc/PID/pagemap, root).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
#define NA 16 /* anon pages */
#define NF 8  /* file pages */
#define NR 4  /* read-only region pages */

static unsigned char *anon, *file, *ro, *ro_child;

/* Page i of a region, as one side last wrote it. */
static void expect(unsigned char *buf, uint64_t seed, int i)
{
	subject_fill(buf, PG, seed * 1000 + (uint64_t)i);
}

static int page_is(const unsigned char *p, uint64_t seed, int i)
{
	unsigned char want[PG];
	expect(want, seed, i);
	return memcmp(p, want, PG) == 0;
}

static int page_zero(const unsigned char *p)
{
	for (int i = 0; i < PG; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Physical frame of addr in pid, 0 if not present. */
static uint64_t pfn(pid_t pid, const void *addr)
{
	char path[64];
	uint64_t e = 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		subject_fail("open %s: %s", path, strerror(errno));
	if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / PG) * 8) != sizeof(e))
		subject_fail("read %s: %s", path, strerror(errno));
	close(fd);
	return (e >> 63) ? (e & ((1ULL << 55) - 1)) : 0;
}

/* After fork, in the child: the pages it changes, drops and protects. */
static const char *child_setup(void *arg)
{
	expect(anon + 4 * PG, 2, 4);
	expect(anon + 5 * PG, 2, 5);
	madvise(anon + 8 * PG, PG, MADV_DONTNEED);
	expect(file + 4 * PG, 5, 4);
	expect(ro + 1 * PG, 2, 1);
	mprotect(ro, NR * PG, PROT_READ);
	mprotect(ro_child, PG, PROT_READ);
	return NULL;
}

/* Seeds: 1 parent before fork, 2 child after, 3 parent after, 4 file before fork, 5 file child after. */
static const char *child_check(void *arg)
{
	for (int i = 0; i < NA; i++) {
		const unsigned char *p = anon + i * PG;
		if (i == 4 || i == 5) {
			if (!page_is(p, 2, i))
				return "anon page the child wrote";
		} else if (i == 8) {
			if (!page_zero(p))
				return "anon page the child dropped is not zero";
		} else if (!page_is(p, 1, i)) {
			return "anon page as inherited";
		}
	}
	for (int i = 0; i < NF; i++)
		if (!page_is(file + i * PG, i == 4 ? 5 : 4, i))
			return "file page";
	for (int i = 0; i < NR; i++)
		if (!page_is(ro + i * PG, i == 1 ? 2 : 1, i))
			return "read-only region page";
	char perms[5];
	if (subject_vma_perms(ro_child, perms) != 0 || perms[1] != '-')
		return "child's read-only region lost its protection";
	if (!page_is(ro_child, 1, 0))
		return "child's read-only region";
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	anon = mmap(NULL, NA * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, NR * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro_child = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("cow-file", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (anon == MAP_FAILED || ro == MAP_FAILED || ro_child == MAP_FAILED || fd < 0)
		subject_fail("setup: %s", strerror(errno));
	unsigned char zero[PG] = { 0 };
	for (int i = 0; i < NF; i++)
		if (write(fd, zero, PG) != PG)
			subject_fail("write cow-file: %s", strerror(errno));
	file = mmap(NULL, NF * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		subject_fail("mmap cow-file: %s", strerror(errno));
	close(fd);
	for (int i = 0; i < NA; i++)
		expect(anon + i * PG, 1, i);
	for (int i = 0; i < NF; i++)
		expect(file + i * PG, 4, i);
	for (int i = 0; i < NR; i++)
		expect(ro + i * PG, 1, i);
	expect(ro_child, 1, 0);

	struct subject_child child = subject_fork_prepared("the child", child_setup, child_check, NULL);
	expect(anon + 6 * PG, 3, 6);
	expect(anon + 7 * PG, 3, 7);
	mprotect(ro, NR * PG, PROT_READ);

	/* Pages shared by both: the untouched anon pages, the file's COW pages but page 4, ro's but page 1. */
	const unsigned char *shared[NA + NF + NR + 1];
	int ns = 0;
	for (int i = 0; i < NA; i++)
		if (i < 4 || i > 8)
			shared[ns++] = anon + i * PG;
	for (int i = 0; i < NF; i++)
		if (i != 4)
			shared[ns++] = file + i * PG;
	for (int i = 0; i < NR; i++)
		if (i != 1)
			shared[ns++] = ro + i * PG;
	shared[ns++] = ro_child;
	for (int i = 0; i < ns; i++)
		if (pfn(getpid(), shared[i]) == 0 || pfn(getpid(), shared[i]) != pfn(child.pid, shared[i]))
			subject_fail("before the dump: page %p is not shared (is this root?)", (void *)shared[i]);

	subject_ready();
	subject_wait_term();

	for (int i = 0; i < NA; i++)
		if (!page_is(anon + i * PG, (i == 6 || i == 7) ? 3 : 1, i))
			subject_fail("parent's anon page %d", i);
	for (int i = 0; i < NF; i++)
		if (!page_is(file + i * PG, 4, i))
			subject_fail("parent's file page %d", i);
	for (int i = 0; i < NR; i++)
		if (!page_is(ro + i * PG, 1, i))
			subject_fail("parent's read-only page %d", i);
	int lost = 0;
	for (int i = 0; i < ns; i++) {
		uint64_t a = pfn(getpid(), shared[i]), b = pfn(child.pid, shared[i]);
		if (a == 0 || a != b)
			lost++;
	}
	if (lost)
		subject_fail("%d of %d pages no longer shared with the child", lost, ns);
	for (int i = 4; i <= 7; i++)
		if (pfn(getpid(), anon + i * PG) == pfn(child.pid, anon + i * PG))
			subject_fail("anon page %d changed after fork is shared", i);

	subject_child_verdict(child, "the child");
	subject_pass();
}
