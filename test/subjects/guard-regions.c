/*
 * guard-regions: MADV_GUARD_INSTALL guard regions (Linux 6.13+) inside an
 * anonymous and a private file mapping survive: after restore a touch of a
 * guarded page still faults (SIGSEGV), the pages around them keep their
 * data, and the guards are still no VMA of their own (one VMA each).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define PG 4096L
#define N 8

static sigjmp_buf jb;
static volatile sig_atomic_t armed;

static void on_segv(int sig)
{
	(void)sig;
	if (armed)
		siglongjmp(jb, 1);
	_exit(3);
}

static int faults(volatile char *p)
{
	armed = 1;
	if (sigsetjmp(jb, 1)) {
		armed = 0;
		return 1;
	}
	*p = 'x';
	armed = 0;
	return 0;
}

static const int guarded[N] = { 0, 1, 1, 0, 0, 1, 0, 0 };

static int vmas_at(const char *base)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s < (unsigned long)base + N * PG && e > (unsigned long)base)
			n++;
	}
	if (f)
		fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	signal(SIGSEGV, on_segv);
	char *anon = mmap(NULL, N * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("guarded-file", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (anon == MAP_FAILED || fd < 0 || ftruncate(fd, N * PG) != 0)
		subject_fail("setup: %s", strerror(errno));
	char *file = mmap(NULL, N * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		subject_fail("mmap file: %s", strerror(errno));
	close(fd);
	for (int i = 0; i < N; i++) {
		subject_fill(anon + i * PG, PG, 10 + i);
		subject_fill(file + i * PG, PG, 20 + i);
	}
	for (int i = 0; i < N; i++) {
		if (!guarded[i])
			continue;
		if (madvise(anon + i * PG, PG, MADV_GUARD_INSTALL) || madvise(file + i * PG, PG, MADV_GUARD_INSTALL))
			subject_fail("MADV_GUARD_INSTALL: %s", strerror(errno));
	}

	subject_ready();
	subject_wait_term();

	for (int i = 0; i < N; i++) {
		if (guarded[i]) {
			if (!faults(anon + i * PG) || !faults(file + i * PG))
				subject_fail("page %d is no longer guarded", i);
			continue;
		}
		unsigned char want[PG];
		subject_fill(want, PG, 10 + i);
		if (memcmp(anon + i * PG, want, PG) != 0)
			subject_fail("anon page %d", i);
		subject_fill(want, PG, 20 + i);
		if (memcmp(file + i * PG, want, PG) != 0)
			subject_fail("file page %d", i);
	}
	if (vmas_at(anon) != 1 || vmas_at(file) != 1)
		subject_fail("the guarded mappings were split into several VMAs");
	subject_pass();
}
