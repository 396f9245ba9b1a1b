/*
 * sparse-memory: one big private anonymous mapping of which only some
 * stretches were ever written (1 MiB, 8 KiB, 300 KiB off a page boundary,
 * 10 MiB, the last page), and a written region made read-only. The restore
 * populates the stretches the dump wrote before it reads them in
 * (kinds/memory/fill.ts): the untouched pages between them must stay
 * unallocated and read as zeros. After SIGTERM: every stretch's contents,
 * zeros elsewhere, the read-only region's protection, and no more resident
 * memory than before the dump (Rss of each mapping, /proc/self/smaps;
 * not compared where THP is "always", which may round a stretch up to a
 * huge page either way).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MIB (1024 * 1024)
#define PG 4096
#define LEN (48 * MIB)
#define RO_LEN (2 * MIB)

struct stretch {
	size_t off, len;
	uint64_t sum;
};

static struct stretch st[] = {
	{ 0, 1 * MIB, 0 },
	{ 3 * MIB, 2 * PG, 0 },
	{ 5 * MIB + PG, 300 * 1024, 0 },
	{ 16 * MIB, 10 * MIB, 0 },
	{ LEN - PG, PG, 0 },
};
#define NST (sizeof(st) / sizeof(st[0]))

/* Rss of the mapping that starts at addr, in kB (-1 if not found). */
static long rss_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (f == NULL)
		subject_fail("open smaps");
	char line[512];
	int in = 0;
	long kb = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strspn(line, "0123456789abcdef")) {
			in = lo == (unsigned long)addr;
			continue;
		}
		if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

static int thp_always(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char buf[128] = "";
	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = 0;
	fclose(f);
	return strstr(buf, "[always]") != NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unsigned char *mem = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *ro = mmap(NULL, RO_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || ro == MAP_FAILED)
		subject_fail("mmap");
	for (size_t i = 0; i < NST; i++) {
		subject_fill(mem + st[i].off, st[i].len, 0x5a00 + i);
		st[i].sum = subject_hash(mem + st[i].off, st[i].len);
	}
	subject_fill(ro, RO_LEN, 0x7a7a);
	uint64_t ro_sum = subject_hash(ro, RO_LEN);
	if (mprotect(ro, RO_LEN, PROT_READ) != 0)
		subject_fail("mprotect");
	long rss_mem = rss_kb(mem), rss_ro = rss_kb(ro);
	subject_log("rss before: %ld kB and %ld kB", rss_mem, rss_ro);

	subject_ready();
	subject_wait_term();

	/* Resident memory first: reading the holes below maps only the zero page, but read them after all the same. */
	long now_mem = rss_kb(mem), now_ro = rss_kb(ro);
	if (!thp_always() && (now_mem > rss_mem || now_ro > rss_ro))
		subject_fail("more memory resident than before the dump: %ld kB (was %ld) and %ld kB (was %ld)", now_mem, rss_mem, now_ro, rss_ro);
	for (size_t i = 0; i < NST; i++)
		if (subject_hash(mem + st[i].off, st[i].len) != st[i].sum)
			subject_fail("stretch %zu (offset 0x%zx) differs", i, st[i].off);
	size_t at = 0;
	for (size_t i = 0; i <= NST; i++) {
		size_t end = i < NST ? st[i].off : LEN;
		for (size_t o = at; o < end; o++)
			if (mem[o] != 0)
				subject_fail("byte at 0x%zx is 0x%x, not zero", o, mem[o]);
		if (i < NST)
			at = st[i].off + st[i].len;
	}
	if (subject_hash(ro, RO_LEN) != ro_sum)
		subject_fail("read-only region differs");
	char perms[5];
	if (subject_vma_perms(ro, perms) != 0 || strcmp(perms, "r--p") != 0)
		subject_fail("read-only region has perms %s", perms);
	subject_pass();
}
