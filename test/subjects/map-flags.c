/*
 * map-flags: mappings whose kind lives in their flags. A MAP_LOCKED
 * region and an mlock()ed one stay locked ("lo" in smaps VmFlags), a
 * MAP_DROPPABLE one stays droppable ("dp"; skipped where the kernel has no
 * MAP_DROPPABLE), and a private mapping of /dev/zero keeps its data.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif

#define LEN (4 * 4096)

/* 1 when the smaps VmFlags of the VMA holding addr contain flag. */
static int has_vmflag(void *addr, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	int in = 0, found = -1;
	unsigned long a = (unsigned long)addr;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = a >= s && a < e;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			char want[8];
			snprintf(want, sizeof(want), " %s", flag);
			found = strstr(line, want) != NULL;
			break;
		}
	}
	if (f)
		fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char *locked = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	char *mlocked = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (locked == MAP_FAILED || mlocked == MAP_FAILED || mlock(mlocked, LEN) != 0)
		subject_fail("locked mappings: %m");
	subject_fill(locked, LEN, 1);
	subject_fill(mlocked, LEN, 2);
	uint64_t h1 = subject_hash(locked, LEN), h2 = subject_hash(mlocked, LEN);
	char *drop = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (drop == MAP_FAILED && errno != EINVAL)
		subject_fail("MAP_DROPPABLE: %m");
	int zfd = open("/dev/zero", O_RDWR);
	char *zero = zfd < 0 ? MAP_FAILED : mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, zfd, 0);
	if (zero == MAP_FAILED)
		subject_fail("/dev/zero mapping: %m");
	close(zfd);
	subject_fill(zero + 4096, 4096, 3);
	uint64_t hz = subject_hash(zero, LEN);
	subject_ready();
	subject_wait_term();

	if (has_vmflag(locked, "lo") != 1 || has_vmflag(mlocked, "lo") != 1)
		subject_fail("locked: MAP_LOCKED %d, mlock %d (want 1, 1)", has_vmflag(locked, "lo"), has_vmflag(mlocked, "lo"));
	if (subject_hash(locked, LEN) != h1 || subject_hash(mlocked, LEN) != h2)
		subject_fail("locked memory changed");
	if (drop != MAP_FAILED && has_vmflag(drop, "dp") != 1)
		subject_fail("MAP_DROPPABLE mapping is no longer droppable");
	if (subject_hash(zero, LEN) != hz)
		subject_fail("private /dev/zero mapping changed");
	subject_pass();
}
