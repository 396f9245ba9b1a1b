/*
 * mappings: one of each kind of VMA a dump must get right. Each region gets
 * a pattern and a checksum; after SIGTERM every checksum, the shared file's
 * bytes on disk, and each region's protection and sharing (from
 * /proc/self/maps) are checked again.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096
#define NREG 32

struct region {
	const char *name;
	unsigned char *addr;
	size_t len;
	const char *perms; /* expected /proc/self/maps perms */
	int check_data;
	uint64_t sum;
};

static struct region reg[NREG];
static int nreg;

static unsigned char *add(const char *name, void *addr, size_t len, const char *perms, int fill)
{
	if (addr == MAP_FAILED || addr == NULL)
		subject_fail("map %s", name);
	if (nreg == NREG)
		subject_fail("too many regions");
	struct region *r = &reg[nreg++];
	*r = (struct region){ name, addr, len, perms, fill, 0 };
	if (fill)
		subject_fill(addr, len, 0x1000 + nreg);
	return addr;
}

static void *anon(size_t len, int prot, int flags)
{
	return mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
}

static int file_of(const char *name, size_t len)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, len) != 0)
		subject_fail("create %s", name);
	return fd;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unsigned char stack_data[32 * 1024];

	add("private anon", anon(16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE), 16 * PG, "rw-p", 1);
	add("shared anon", anon(16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED), 16 * PG, "rw-s", 1);

	/* Private file mapping: the file's bytes, then half the pages COW-modified. */
	int pfd = file_of("private.dat", 8 * PG);
	unsigned char *pmap = add("private file", mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd, 0), 8 * PG, "rw-p", 0);
	subject_fill(pmap + 4 * PG, 4 * PG, 77);
	close(pfd);

	int sfd = file_of("shared.dat", 8 * PG);
	unsigned char *smap = add("shared file", mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0), 8 * PG, "rw-s", 1);

	add("heap big", malloc(8 << 20), 8 << 20, "rw-p", 1);
	for (int i = 0; i < 3; i++)
		add("heap small", malloc(100 + i * 50), 100 + i * 50, "rw-p", 1);
	add("stack", stack_data, sizeof(stack_data), "rw-p", 1);

	add("none 1GiB", anon(1UL << 30, PROT_NONE, MAP_PRIVATE | MAP_NORESERVE), 1UL << 30, "---p", 0);

	unsigned char *ro = add("read-only", anon(4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE), 4 * PG, "r--p", 1);
	if (mprotect(ro, 4 * PG, PROT_READ) != 0)
		subject_fail("mprotect ro");

	/* Guards: RW, NONE, RW, NONE, RW in one mapping, split into five VMAs. */
	unsigned char *g = anon(5 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	if (g == MAP_FAILED || mprotect(g + PG, PG, PROT_NONE) || mprotect(g + 3 * PG, PG, PROT_NONE))
		subject_fail("guard pages");
	add("guarded 0", g, PG, "rw-p", 1);
	add("guard 1", g + PG, PG, "---p", 0);
	add("guarded 2", g + 2 * PG, PG, "rw-p", 1);
	add("guard 3", g + 3 * PG, PG, "---p", 0);
	add("guarded 4", g + 4 * PG, PG, "rw-p", 1);

	add("growsdown", anon(4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN), 4 * PG, "rw-p", 1);

	for (int i = 0; i < nreg; i++)
		reg[i].sum = subject_hash(reg[i].addr, reg[i].check_data || reg[i].perms[0] == 'r' ? reg[i].len : 0);

	subject_ready();
	subject_wait_term();

	for (int i = 0; i < nreg; i++) {
		struct region *r = &reg[i];
		size_t n = r->check_data || r->perms[0] == 'r' ? r->len : 0;
		if (subject_hash(r->addr, n) != r->sum)
			subject_fail("%s at %p: checksum changed", r->name, (void *)r->addr);
		char perms[5] = "";
		/* Small heap chunks live in [heap]; big malloc may be its own rw-p VMA: both rw-p. */
		if (subject_vma_perms(r->addr, perms) != 0)
			subject_fail("%s at %p: no VMA", r->name, (void *)r->addr);
		if (strcmp(perms, r->perms) != 0)
			subject_fail("%s at %p: perms %s, want %s", r->name, (void *)r->addr, perms, r->perms);
	}
	/* The shared file mapping and the file on disk must be the same bytes. */
	static unsigned char disk[8 * PG];
	if (pread(sfd, disk, sizeof(disk), 0) != (ssize_t)sizeof(disk))
		subject_fail("pread shared.dat");
	if (memcmp(disk, smap, sizeof(disk)) != 0)
		subject_fail("shared.dat on disk differs from its shared mapping");
	subject_pass();
}
