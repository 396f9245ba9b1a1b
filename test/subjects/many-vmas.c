/*
 * many-vmas: --n N (default 3000) private anonymous mappings of --pages P
 * (default 2) pages each, one page of hole between neighbours (so none
 * merge), each filled from a seed of its own. From ready until SIGTERM it
 * reads the first word of every page, last mapping first, every 2 ms: a
 * lazy restore hands a task's ranges to its daemon in packets of 1000, and
 * this touches the ranges of the last packet the moment the task runs
 * again (a page served as zeros there is caught in that first pass). After
 * SIGTERM every mapping is hashed and compared.
 */
#include "subject.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PG 4096
#define SEED 0x3a9b0000ULL

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	long n = subject_opt_long("n", 3000);
	long pages = subject_opt_long("pages", 2);
	size_t stride = (size_t)(pages + 1) * PG;
	unsigned char *base = mmap(NULL, (size_t)n * stride, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *sum = calloc((size_t)n, sizeof(*sum));
	uint64_t *first = calloc((size_t)(n * pages), sizeof(*first));
	if (base == MAP_FAILED || sum == NULL || first == NULL)
		subject_fail("mmap %ld mappings", n);
	for (long i = 0; i < n; i++) {
		unsigned char *m = base + (size_t)i * stride;
		if (munmap(m + (size_t)pages * PG, PG) != 0)
			subject_fail("hole after mapping %ld", i);
		subject_fill(m, (size_t)pages * PG, SEED + (uint64_t)i);
		sum[i] = subject_hash(m, (size_t)pages * PG);
		for (long p = 0; p < pages; p++)
			memcpy(&first[i * pages + p], m + (size_t)p * PG, 8);
	}
	subject_ready();
	const struct timespec tick = { 0, 2 * 1000 * 1000 };
	long bad = -1;
	uint64_t seen = 0;
	while (!subject_term && bad < 0) {
		for (long i = n - 1; i >= 0 && bad < 0; i--) {
			for (long p = 0; p < pages; p++) {
				uint64_t w;
				memcpy(&w, base + (size_t)i * stride + (size_t)p * PG, 8);
				if (w != first[i * pages + p]) {
					bad = i * pages + p;
					seen = w;
					break;
				}
			}
		}
		nanosleep(&tick, NULL);
	}
	if (bad >= 0)
		subject_fail("page %ld of mapping %ld read 0x%llx, it held 0x%llx", bad % pages, bad / pages, (unsigned long long)seen,
			     (unsigned long long)first[bad]);
	subject_wait_term();
	for (long i = 0; i < n; i++)
		if (subject_hash(base + (size_t)i * stride, (size_t)pages * PG) != sum[i])
			subject_fail("mapping %ld (of %ld) differs", i, n);
	subject_pass();
}
