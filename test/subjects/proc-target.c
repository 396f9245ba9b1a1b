/*
 * proc-target: a process with known, odd-shaped /proc content for the
 * src/proc parser tests: comm with spaces and parentheses, umask 027, an fd
 * at a known offset, anonymous regions with a known present-page pattern, a
 * deleted shared file mapping whose name has spaces, blocked/ignored
 * signals, a POSIX timer, a lowered RLIMIT_NOFILE, oom_score_adj, a thread
 * that forked a child of its own, and a grandchild. Addresses and ids go to
 * WORKDIR/proc-target.info as key=value lines before ready. After SIGTERM it
 * re-checks the few things it set and kills its children.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PG 4096

static int tpipe[2];

static void park(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;)
		pause();
}

static void *thread_main(void *arg)
{
	int ids[2] = { gettid(), 0 };
	pid_t c = fork();
	if (c == 0)
		park();
	ids[1] = c;
	if (write(tpipe[1], ids, sizeof(ids)) != sizeof(ids))
		subject_fail("thread pipe");
	for (;;)
		pause();
	return arg;
}

static unsigned char *guarded(int pages, int prot)
{
	unsigned char *p = mmap(NULL, (pages + 2) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + PG, pages * PG, prot) != 0)
		subject_fail("guarded mmap");
	return p + PG;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	umask(027);
	prctl(PR_SET_NAME, "pt (x) y");

	int fd = open("offset.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	static char zeros[10000];
	if (fd < 0 || write(fd, zeros, sizeof(zeros)) != sizeof(zeros) || dup2(fd, 7) != 7)
		subject_fail("offset.dat");
	close(fd);
	lseek(7, 4242, SEEK_SET);

	/* Each region sits between PROT_NONE guards so the kernel cannot merge it with a neighbour. */
	unsigned char *a = guarded(8, PROT_READ | PROT_WRITE);
	unsigned char *b = guarded(5, PROT_READ | PROT_EXEC);
	int dfd = open("a b.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (dfd < 0 || ftruncate(dfd, 2 * PG) != 0)
		subject_fail("a b.dat");
	unsigned char *d = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
	if (d == MAP_FAILED)
		subject_fail("mmap a b.dat");
	close(dfd);
	unlink("a b.dat");

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	timer_t tid;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 3;
	sev.sigev_value.sival_ptr = (void *)0xabcdef;
	struct itimerspec its = { { 0, 0 }, { 100, 0 } };
	if (timer_create(CLOCK_MONOTONIC, &sev, &tid) != 0 || timer_settime(tid, 0, &its, NULL) != 0)
		subject_fail("timer");

	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 1000;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		subject_fail("setrlimit");
	int ofd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (ofd < 0 || write(ofd, "123", 3) != 3)
		subject_fail("oom_score_adj");
	close(ofd);

	/* child1 forks a grandchild and reports its pid through a pipe. */
	int gpipe[2];
	if (pipe(gpipe) != 0 || pipe(tpipe) != 0)
		subject_fail("pipe");
	pid_t child1 = fork();
	if (child1 == 0) {
		pid_t g = fork();
		if (g == 0)
			park();
		if (write(gpipe[1], &g, sizeof(g)) != sizeof(g))
			_exit(3);
		park();
	}
	pid_t grandchild;
	if (read(gpipe[0], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
		subject_fail("grandchild pid");
	/* The thread is born with SIGTERM blocked: the end signal must wake the main thread's wait. */
	(void)subject_thread(thread_main, NULL);
	int ids[2];
	if (read(tpipe[0], ids, sizeof(ids)) != sizeof(ids))
		subject_fail("thread ids");

	/* Touched after the forks so the pages are exclusive to us: present runs {0,3} and {5,1}. */
	a[0] = a[PG] = a[2 * PG] = a[5 * PG] = 1;

	FILE *f = fopen("proc-target.info", "w");
	fprintf(f, "anon=%lx\nrx=%lx\ndeleted=%lx\ntimer=%ld\nthread=%d\nchild1=%d\nchild2=%d\ngrandchild=%d\n",
		(unsigned long)a, (unsigned long)b, (unsigned long)d, (long)(intptr_t)tid, ids[0], child1, ids[1], grandchild);
	fclose(f);

	subject_ready();
	subject_wait_term();

	mode_t m = umask(0);
	kill(child1, SIGKILL);
	kill(ids[1], SIGKILL);
	kill(grandchild, SIGKILL);
	if (m != 027)
		subject_fail("umask 0%o", m);
	if (lseek(7, 0, SEEK_CUR) != 4242)
		subject_fail("fd 7 offset");
	subject_pass();
}
