/*
 * big-memory: --mib N (default 256) of pseudo-random anonymous memory from a
 * seeded generator, so every page is distinct and non-zero. After SIGTERM the
 * whole area is regenerated and compared page by page: any lost, shifted or
 * zeroed page is reported with its offset.
 */
#include "subject.h"

#include <string.h>
#include <sys/mman.h>

#define SEED 0x5eed1234abcdULL

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	long mib = subject_opt_long("mib", 256);
	size_t len = (size_t)mib << 20;
	unsigned char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		subject_fail("mmap %ld MiB", mib);
	subject_fill(mem, len, SEED);
	subject_log("filled %ld MiB at %p", mib, (void *)mem);

	subject_ready();
	subject_wait_term();

	/* Regenerate the stream in page-sized chunks: the generator state carries across chunks. */
	uint64_t s = SEED, want[512];
	for (size_t off = 0; off < len; off += sizeof(want)) {
		for (int i = 0; i < 512; i++)
			want[i] = subject_rand(&s);
		if (memcmp(mem + off, want, sizeof(want)) != 0)
			subject_fail("page at offset 0x%zx differs", off);
	}
	subject_pass();
}
