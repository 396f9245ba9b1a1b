/*
 * no-vdso: the task unmaps its vDSO and vvar pages (as on a kernel booted
 * with vdso=0) and works on without them. After restore it still has no
 * [vdso]/[vvar] mapping, and its memory and syscalls work. (No clock or
 * time calls here: glibc would jump into the missing vDSO.)
 */
#define _GNU_SOURCE
#include "subject.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LEN (64 * 1024)

/* Unmap every [vdso]/[vvar]* mapping (unmap 1) or count them (unmap 0). */
static int vdso_maps(int unmap)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	unsigned long s[8], e[8];
	int n = 0;
	while (f && fgets(line, sizeof(line), f) && n < 8) {
		if (strstr(line, "[vdso]") || strstr(line, "[vvar"))
			if (sscanf(line, "%lx-%lx", &s[n], &e[n]) == 2)
				n++;
	}
	if (f)
		fclose(f);
	for (int i = 0; unmap && i < n; i++)
		if (munmap((void *)s[i], e[i] - s[i]) != 0)
			return -1;
	return n;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char *buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		subject_fail("mmap: %m");
	subject_fill(buf, LEN, 7);
	uint64_t h = subject_hash(buf, LEN);
	if (vdso_maps(1) < 1)
		subject_fail("no vDSO to unmap, or munmap failed");
	if (vdso_maps(0) != 0)
		subject_fail("vDSO still mapped");
	subject_ready();
	subject_wait_term();

	int left = vdso_maps(0);
	if (left != 0)
		subject_fail("%d vDSO/vvar mapping(s) after restore", left);
	if (subject_hash(buf, LEN) != h)
		subject_fail("memory changed");
	if (syscall(SYS_getpid) != getpid())
		subject_fail("getpid");
	subject_pass();
}
