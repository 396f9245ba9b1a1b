/*
 * cgroup: a process in a cgroup v2 directory of its own, made here, and its
 * child in a directory below it. Beside them an empty directory with mode
 * 0751, and the own directory limited with cgroup.max.descendants = 5.
 * After the restore each process must be back in its directory, the empty
 * one still there with its mode, the limit still set. Everything made here
 * is removed again (the processes go back where they started first).
 *
 * The directory is DIR = <own cgroup>/criu-ts-cg-<pid> in the first cgroup2
 * mount of /proc/self/mountinfo (test/kinds/cgroup.test.ts finds it the same way).
 */
#include "subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char start_cg[2048]; /* where we started, inside the hierarchy */
static char mnt[2048];
static char dir[4400], inner[4500], empty[4500];

/* The v2 path of `pid` ("0::/x" -> "/x"), or NULL. */
static const char *v2_path(pid_t pid, char *buf, size_t len)
{
	char file[64];
	snprintf(file, sizeof(file), "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(file, "r");
	if (!f)
		return NULL;
	const char *r = NULL;
	char line[2048];
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%s", line + 3);
			r = buf;
		}
	}
	fclose(f);
	return r;
}

/* Mount point of the first cgroup2 mount whose root is "/". */
static int find_mount(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return -1;
	char line[8192];
	int found = -1;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		char root[2048], point[2048];
		if (sscanf(line, "%*d %*d %*s %2047s %2047s", root, point) != 2)
			continue;
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep, " - cgroup2 ", 11) != 0 || strcmp(root, "/") != 0)
			continue;
		snprintf(mnt, sizeof(mnt), "%s", point);
		found = 0;
	}
	fclose(f);
	return found;
}

static int move_to(const char *cg, pid_t pid)
{
	char file[4600];
	snprintf(file, sizeof(file), "%s/cgroup.procs", cg);
	FILE *f = fopen(file, "w");
	if (!f)
		return -1;
	int ok = fprintf(f, "%d", (int)pid) > 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static const char *in_cg(pid_t pid, const char *want)
{
	static char why[4700];
	char got[2048];
	if (!v2_path(pid, got, sizeof(got)))
		return "no cgroup v2 line";
	if (strcmp(got, want) != 0) {
		snprintf(why, sizeof(why), "pid %d in %s, want %s", (int)pid, got, want);
		return why;
	}
	return NULL;
}

static char dir_rel[2200], inner_rel[2300];

static const char *child_check(void *arg)
{
	(void)arg;
	return in_cg(getpid(), inner_rel);
}

static pid_t child_pid;

/*
 * Before the verdict is written (the harness may kill us as soon as it reads
 * it), and at exit for the failures of the subject library: the child is
 * ended, both go back where they started, the directories go.
 */
static void cleanup(void)
{
	char back[4200];
	snprintf(back, sizeof(back), "%s%s", mnt, strcmp(start_cg, "/") == 0 ? "" : start_cg);
	if (child_pid > 0 && getpid() != child_pid) {
		kill(child_pid, SIGKILL);
		move_to(back, child_pid);
	}
	move_to(back, getpid());
	rmdir(inner);
	rmdir(empty);
	rmdir(dir);
}

#define FAIL(...)                          \
	do {                               \
		cleanup();                 \
		subject_fail(__VA_ARGS__); \
	} while (0)

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (find_mount() != 0)
		subject_fail("no cgroup2 mount");
	if (!v2_path(getpid(), start_cg, sizeof(start_cg)))
		subject_fail("no cgroup v2 line in /proc/self/cgroup");
	const char *up = strcmp(start_cg, "/") == 0 ? "" : start_cg;
	snprintf(dir_rel, sizeof(dir_rel), "%s/criu-ts-cg-%d", up, (int)getpid());
	snprintf(inner_rel, sizeof(inner_rel), "%s/inner", dir_rel);
	snprintf(dir, sizeof(dir), "%s%s", mnt, dir_rel);
	snprintf(inner, sizeof(inner), "%s/inner", dir);
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	atexit(cleanup);
	if (mkdir(dir, 0755) != 0 || mkdir(inner, 0755) != 0 || mkdir(empty, 0755) != 0 || chmod(empty, 0751) != 0) {
		int e = errno;
		FAIL("making %s: %s", dir, strerror(e));
	}
	char limit[4600];
	snprintf(limit, sizeof(limit), "%s/cgroup.max.descendants", dir);
	FILE *lf = fopen(limit, "w");
	if (!lf || fprintf(lf, "5") < 0 || fclose(lf) != 0)
		FAIL("setting %s", limit);
	struct subject_child c = subject_fork_checker(child_check, NULL);
	child_pid = c.pid;
	if (move_to(dir, getpid()) != 0 || move_to(inner, c.pid) != 0) {
		int e = errno;
		FAIL("moving into %s: %s", dir, strerror(e));
	}
	subject_ready();
	subject_wait_term();

	const char *w = in_cg(getpid(), dir_rel);
	if (w)
		FAIL("%s", w);
	struct stat st;
	if (stat(empty, &st) != 0) {
		int e = errno;
		FAIL("%s is gone: %s", empty, strerror(e));
	}
	if ((st.st_mode & 07777) != 0751)
		FAIL("%s has mode %o, want 751", empty, st.st_mode & 07777);
	char v[64] = "";
	FILE *f = fopen(limit, "r");
	if (!f || !fgets(v, sizeof(v), f))
		FAIL("cannot read %s", limit);
	fclose(f);
	if (strcmp(v, "5\n") != 0)
		FAIL("%s is %s, want 5", limit, v);
	subject_child_verdict(c, "child in its cgroup");
	child_pid = 0;
	cleanup();
	subject_pass();
}
