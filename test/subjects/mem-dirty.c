/*
 * mem-dirty: memory that changes between pre-dumps, with a model of what
 * every page must hold. Used by test/e2e/pre-dump.test.ts.
 *
 * A region R of --pages N (default 256) private anonymous pages; page i
 * holds version v[i] (seeded bytes from (i, v[i]); version 0 = never
 * written / dropped = zeros). Each SIGUSR1 runs the next phase:
 *   phase k: write every page i of R with i % 7 == k % 7 (version + 1);
 *   phase 1 also: madvise(DONTNEED) R[100..104) (zeros now), munmap
 *     R[200..208) (a hole), map a new region M of 16 pages and fill it;
 *   phase 2 also: mremap M elsewhere, DONTNEED R[104..106) and read them
 *     back (the zero page), DONTNEED R[110] and write it again;
 *   phase 3 and later: only the writes.
 * After each phase it writes OUTFILE.phaseK with "R_ADDR WRITTEN_IN_R"
 * (pages of R written in that phase, in hex address then decimal count).
 * --speed MIB: on SIGUSR2, time two write passes over a MIB region and
 * write OUTFILE.speed with "BASELINE_GBPS PASS1_GBPS PASS2_GBPS" (the
 * baseline pass is done at start, before any pre-dump).
 * On SIGTERM: every page of R and M is checked against the model, the
 * hole must still be unmapped, and no userfaultfd may be left among the
 * fds (the final dump closes criu-ts's tracker).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#define PS 4096
#define MPAGES 16

static volatile sig_atomic_t usr1, usr2;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) { (void)s; usr2++; }

static unsigned char *R, *M;
static long N;
static int *ver, mver[MPAGES];

static void fill_page(unsigned char *p, long i, int v, uint64_t salt)
{
	if (v == 0)
		memset(p, 0, PS);
	else
		subject_fill(p, PS, salt ^ ((uint64_t)i << 20) ^ (uint64_t)v);
}

static void check_page(const unsigned char *p, long i, int v, uint64_t salt, const char *what)
{
	static unsigned char want[PS];
	fill_page(want, i, v, salt);
	if (memcmp(p, want, PS) != 0)
		subject_fail("%s page %ld (version %d) differs", what, i, v);
}

static int in_hole(long i) { return i >= 200 && i < 208; }

static void write_phase(int k, long written)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s.phase%d", subject_opt("out", "out"), k);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		subject_fail("fopen %s", tmp);
	fprintf(f, "%lx %ld\n", (unsigned long)R, written);
	fclose(f);
	rename(tmp, path);
}

static double pass_gbps(unsigned char *m, size_t len)
{
	int64_t t = subject_now_ns();
	for (size_t off = 0; off < len; off += 64)
		m[off]++;
	return (double)len / (double)(subject_now_ns() - t);
}

static void phase(int k)
{
	long written = 0;
	if (k == 2) {
		unsigned char *to = mmap(NULL, MPAGES * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		M = mremap(M, MPAGES * PS, MPAGES * PS, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (M == MAP_FAILED)
			subject_fail("mremap: %s", strerror(errno));
		madvise(R + 104 * PS, 2 * PS, MADV_DONTNEED);
		ver[104] = ver[105] = 0;
		volatile unsigned char c = R[104 * PS] + R[105 * PS];
		(void)c;
		madvise(R + 110 * PS, PS, MADV_DONTNEED);
		ver[110]++;
		fill_page(R + 110 * PS, 110, ver[110], 0x52);
		written++;
	}
	for (long i = 0; i < N; i++) {
		if (i % 7 != k % 7 || in_hole(i) || (k == 2 && i == 110))
			continue;
		ver[i]++;
		fill_page(R + i * PS, i, ver[i], 0x52);
		written++;
	}
	if (k == 1) {
		madvise(R + 100 * PS, 4 * PS, MADV_DONTNEED);
		for (long i = 100; i < 104; i++)
			if (ver[i] != 0) {
				ver[i] = 0;
			}
		munmap(R + 200 * PS, 8 * PS);
		M = mmap(NULL, MPAGES * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (M == MAP_FAILED)
			subject_fail("mmap M");
		for (int j = 0; j < MPAGES; j++) {
			mver[j] = 1;
			fill_page(M + j * PS, j, 1, 0x4d);
		}
	}
	write_phase(k, written);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	N = subject_opt_long("pages", 256);
	long speed_mib = subject_opt_long("speed", 0);
	if (N < 256)
		subject_fail("--pages must be at least 256");
	R = mmap(NULL, N * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ver = calloc(N, sizeof(int));
	if (R == MAP_FAILED || !ver)
		subject_fail("mmap R");
	for (long i = 0; i < N; i++) {
		ver[i] = 1;
		fill_page(R + i * PS, i, 1, 0x52);
	}
	unsigned char *S = NULL;
	double base = 0;
	if (speed_mib > 0) {
		S = mmap(NULL, (size_t)speed_mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (S == MAP_FAILED)
			subject_fail("mmap S");
		memset(S, 1, (size_t)speed_mib << 20);
		pass_gbps(S, (size_t)speed_mib << 20);
		base = pass_gbps(S, (size_t)speed_mib << 20);
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	subject_ready();
	int done = 0, speeds = 0;
	while (!subject_term) {
		if (usr1 > done) {
			phase(++done);
			continue;
		}
		if (usr2 > speeds && S) {
			speeds++;
			double p1 = pass_gbps(S, (size_t)speed_mib << 20);
			double p2 = pass_gbps(S, (size_t)speed_mib << 20);
			char path[4096], tmp[4200];
			snprintf(path, sizeof(path), "%s.speed", subject_opt("out", "out"));
			snprintf(tmp, sizeof(tmp), "%s.tmp", path);
			FILE *f = fopen(tmp, "w");
			if (f) {
				fprintf(f, "%.3f %.3f %.3f\n", base, p1, p2);
				fclose(f);
				rename(tmp, path);
			}
			continue;
		}
		usleep(2000);
	}
	for (long i = 0; i < N; i++) {
		if (in_hole(i) && done >= 1) {
			char perms[5];
			if (subject_vma_perms(R + i * PS, perms) == 0)
				subject_fail("page %ld of the hole is mapped again", i);
			continue;
		}
		check_page(R + i * PS, i, ver[i], 0x52, "R");
	}
	if (M)
		for (int j = 0; j < MPAGES; j++)
			check_page(M + j * PS, j, mver[j], 0x4d, "M");
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[300], link[256];
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(p, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = 0;
			if (strstr(link, "userfaultfd"))
				subject_fail("fd %s is a userfaultfd: the tracker was left behind", e->d_name);
		}
	}
	subject_pass();
}
