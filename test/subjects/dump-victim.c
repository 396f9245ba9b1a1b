/*
 * dump-victim: a process whose dumper may be killed at any moment; it must
 * carry on exactly as before. 4 threads, a SIGUSR1 handler, a 64 MiB heap:
 *   - main: the heap (64 MiB, filled from a seed, hash checked at the end),
 *     a SIGUSR1 handler (SA_RESTART) that counts, waits for SIGTERM;
 *   - fpu thread: xmm0-15 and st0 held live in registers by an asm loop
 *     that re-checks them between 5 ms nanosleeps;
 *   - spin thread: r12-r15 held with known values by an asm loop in user
 *     space that never makes a syscall (stopped at any instruction);
 *   - reader thread: blocked in read() on a pipe; must get exactly the
 *     byte written at the end (no EINTR, no stray data).
 * Each thread has its own signal mask (SIGTERM and SIGUSR1 plus
 * SIGRTMIN+idx), re-checked at the end. `--usr1 N`: at least N SIGUSR1
 * must have been handled by the end.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEAP_BYTES (64UL << 20)
#define NTHR 3

static volatile int stop, started;
static volatile sig_atomic_t usr1;
static int pipefd[2];
static char msg[NTHR][160];

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static void thread_mask(int idx, sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGRTMIN + idx);
}


/* r12-r15 hold known values while the loop spins in user space; 1 if one changed. */
static int spin_loop(void)
{
	int ret;
	__asm__ volatile("mov $0x1234567812345678, %%r12\n\t"
			 "mov $0x0badc0de0badc0de, %%r13\n\t"
			 "mov $0x7fff0000ffff0000, %%r14\n\t"
			 "mov $0x0123456789abcdef, %%r15\n\t"
			 "1: mov $0x1234567812345678, %%rax\n\t"
			 "cmp %%rax, %%r12\n\t"
			 "jne 2f\n\t"
			 "mov $0x0badc0de0badc0de, %%rax\n\t"
			 "cmp %%rax, %%r13\n\t"
			 "jne 2f\n\t"
			 "mov $0x7fff0000ffff0000, %%rax\n\t"
			 "cmp %%rax, %%r14\n\t"
			 "jne 2f\n\t"
			 "mov $0x0123456789abcdef, %%rax\n\t"
			 "cmp %%rax, %%r15\n\t"
			 "jne 2f\n\t"
			 "pause\n\t"
			 "cmpl $0, %[stop]\n\t"
			 "je 1b\n\t"
			 "mov $0, %[r]\n\t"
			 "jmp 3f\n\t"
			 "2: mov $1, %[r]\n\t"
			 "3:\n\t"
			 : [r] "=r"(ret)
			 : [stop] "m"(stop)
			 : "rax", "r12", "r13", "r14", "r15", "memory", "cc");
	return ret;
}

static void *body(void *arg)
{
	int idx = (int)(long)arg;
	char *m = msg[idx - 1];
	sigset_t want, cur;

	thread_mask(idx, &want);
	pthread_sigmask(SIG_SETMASK, &want, NULL);
	__sync_fetch_and_add(&started, 1);
	if (idx == 1) {
		unsigned char w[264] __attribute__((aligned(16))), s[264] __attribute__((aligned(16)));
		for (int i = 0; i < 256; i++)
			w[i] = (unsigned char)(i * 7 + 3);
		double st0 = 4242.125;
		memcpy(w + 256, &st0, 8);
		if (subject_fpu_loop(w, s, &stop))
			snprintf(m, 160, "fpu thread: xmm/st0 changed");
	} else if (idx == 2) {
		if (spin_loop())
			snprintf(m, 160, "spin thread: r12-r15 changed");
	} else {
		char c = 0;
		ssize_t n = read(pipefd[0], &c, 1);
		if (n != 1 || c != 'x')
			snprintf(m, 160, "reader: read returned %zd (%s), byte 0x%x", n, n < 0 ? strerror(errno) : "-", c);
	}
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	for (int s = 1; s < 65 && !m[0]; s++)
		if (sigismember(&want, s) != sigismember(&cur, s))
			snprintf(m, 160, "thread %d: signal %d %s in its mask", idx, s, sigismember(&cur, s) ? "added" : "missing");
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	long want_usr1 = subject_opt_long("usr1", 0);
	unsigned char *heap = malloc(HEAP_BYTES);
	if (!heap)
		subject_fail("malloc");
	subject_fill(heap, HEAP_BYTES, 0xd0d0);
	uint64_t h = subject_hash(heap, HEAP_BYTES);
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	if (pipe(pipefd))
		subject_fail("pipe");
	pthread_t t[NTHR];
	sigset_t blk, old;
	sigemptyset(&blk);
	sigaddset(&blk, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &blk, &old);
	for (long i = 1; i <= NTHR; i++)
		pthread_create(&t[i - 1], NULL, body, (void *)i);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (started < NTHR)
		usleep(1000);
	subject_ready();
	subject_wait_term();
	stop = 1;
	if (write(pipefd[1], "x", 1) != 1)
		subject_fail("write");
	for (int i = 0; i < NTHR; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < NTHR; i++)
		if (msg[i][0])
			subject_fail("%s", msg[i]);
	if (subject_hash(heap, HEAP_BYTES) != h)
		subject_fail("heap changed");
	if (usr1 < want_usr1)
		subject_fail("SIGUSR1 handled %d times, want %ld", (int)usr1, want_usr1);
	subject_pass();
}
