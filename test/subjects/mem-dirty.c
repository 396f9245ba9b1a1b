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
 * --speed MIB: on SIGUSR2, time write passes over a MIB region and write
 * OUTFILE.speed with "BASELINE_GBPS PASS1_GBPS PASS2_GBPS FAULTS1 FAULTS2":
 * the baseline (done at start, before any pre-dump) and PASS2 are the best
 * of three passes each, so a busy machine's hiccup in one pass does not
 * count; PASS1 is the first pass after the pre-dump alone. FAULTS1 and
 * FAULTS2 are the minor faults this thread took in pass 1 and in the three
 * passes of PASS2: a page still write-protected takes one on each write
 * that finds it so, a page written at full speed none (the tests check
 * the counts, not the speeds, which a loaded machine skews).
 * --fork 1: phase 1 ends with a fork; the child keeps the model as it was
 * then, writes pages i % 5 == 0 of R when the parent's phase 2 asks
 * (SIGUSR1, answered with OUTFILE.child2), and on SIGTERM from the parent
 * checks its own memory and fds the same way (its exit status is checked).
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
#include <sys/wait.h>
#include <sys/resource.h>

#define PS 4096
#define MPAGES 16

static volatile sig_atomic_t usr1, usr2;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) { (void)s; usr2++; }

static unsigned char *R, *M;
static long N;
static int *ver, mver[MPAGES];
static pid_t child = -1;
static int is_child;

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
	snprintf(path, sizeof(path), "%s.%s%d", subject_opt("out", "out"), is_child ? "child" : "phase", k);
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

static long minor_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt;
}

static double best_of_3(unsigned char *p, size_t len)
{
	double best = 0;
	for (int i = 0; i < 3; i++) {
		double g = pass_gbps(p, len);
		if (g > best)
			best = g;
	}
	return best;
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
	if (k == 1 && subject_opt_long("fork", 0)) {
		child = fork();
		if (child < 0)
			subject_fail("fork");
		if (child == 0) {
			is_child = 1;
			child = -1;
			return;
		}
	}
	if (k == 2 && child > 0) {
		char path[4096];
		snprintf(path, sizeof(path), "%s.child2", subject_opt("out", "out"));
		kill(child, SIGUSR1);
		for (int i = 0; i < 500 && access(path, F_OK) != 0; i++)
			usleep(10000);
	}
	write_phase(k, written);
}

/* The child's phase: its own writes, in its own copy of R. */
static void child_phase(int k)
{
	long written = 0;
	for (long i = 0; i < N; i++) {
		if (i % 5 != 0 || in_hole(i))
			continue;
		ver[i]++;
		fill_page(R + i * PS, i, ver[i], 0x52);
		written++;
	}
	write_phase(k, written);
}

static void check_all(int done)
{
	for (long i = 0; i < N; i++) {
		if (in_hole(i) && done >= 1) {
			char perms[5];
			if (subject_vma_perms(R + i * PS, perms) == 0)
				subject_fail("page %ld of the hole is mapped again", i);
			continue;
		}
		check_page(R + i * PS, i, ver[i], 0x52, is_child ? "child's R" : "R");
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
				subject_fail("%s: fd %s is a userfaultfd: the tracker was left behind", is_child ? "child" : "parent", e->d_name);
		}
	}
	if (d)
		closedir(d);
}

static void child_main(void)
{
	int done = 1;
	while (!subject_term) {
		if (usr1 > 0 && done < 2) {
			child_phase(++done);
			continue;
		}
		usleep(2000);
	}
	check_all(1);
	_exit(0);
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
		base = best_of_3(S, (size_t)speed_mib << 20);
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
			if (is_child) {
				usr1 = 0;
				child_main();
			}
			continue;
		}
		if (usr2 > speeds && S) {
			speeds++;
			long f0 = minor_faults();
			double p1 = pass_gbps(S, (size_t)speed_mib << 20);
			long f1 = minor_faults();
			double p2 = best_of_3(S, (size_t)speed_mib << 20);
			long f2 = minor_faults();
			char path[4096], tmp[4200];
			snprintf(path, sizeof(path), "%s.speed", subject_opt("out", "out"));
			snprintf(tmp, sizeof(tmp), "%s.tmp", path);
			FILE *f = fopen(tmp, "w");
			if (f) {
				fprintf(f, "%.3f %.3f %.3f %ld %ld\n", base, p1, p2, f1 - f0, f2 - f1);
				fclose(f);
				rename(tmp, path);
			}
			continue;
		}
		usleep(2000);
	}
	check_all(done);
	if (child > 0) {
		int st;
		kill(child, SIGTERM);
		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			subject_fail("the child's check failed (status 0x%x; see the log)", st);
	}
	subject_pass();
}
