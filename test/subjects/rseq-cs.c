/*
 * rseq critical sections caught by a dump: the main thread and a second
 * one spend nearly all their time inside a long restartable sequence
 * (a spin of about a millisecond), so a dump stops them inside it.
 *
 * The kernel, when it preempts or signals a thread inside such a section,
 * sends it to the section's abort handler on the way back to user space
 * and clears the thread's rseq_cs. A restored thread must do the same: it
 * must never finish the section after its rseq_cs was cleared without
 * being aborted (that is what a lost abort looks like from inside). Each
 * pass through the section ends by reading rseq_cs back: it must still
 * point at the section's descriptor. Aborted passes are counted and start
 * over.
 *
 * Uses the area glibc registered for each thread (__rseq_offset); where
 * glibc registered none, registers one of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "subject.h"

/* Iterations of the spin inside the section: about a millisecond. */
#define SPINS 2000000L

static __thread struct rseq own_area __attribute__((aligned(32)));

static struct rseq *area(void)
{
	char *tp;

	if (__rseq_size == 0)
		return &own_area;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return (struct rseq *)(tp + __rseq_offset);
}

/* Where glibc registered nothing: this thread's own area. */
static void register_area(void)
{
	if (__rseq_size != 0)
		return;
	if (syscall(SYS_rseq, &own_area, sizeof(own_area), 0, RSEQ_SIG) != 0)
		subject_fail("rseq register: %s", strerror(errno));
}

enum pass { COMMITTED, ABORTED, CLEARED };

/*
 * One pass: publish the descriptor, spin SPINS times inside the section,
 * then read rseq_cs back into *seen (the last instruction of the section).
 */
static enum pass one_pass(struct rseq *rs)
{
	uint64_t seen = 1;

	__asm__ __volatile__ goto(
		".pushsection .data.subject_rseq_cs, \"aw\"\n\t"
		".balign 32\n\t"
		"3:\n\t"
		".long 0, 0\n\t"
		".quad 1f, 2f - 1f, 4f\n\t"
		".popsection\n\t"
		"leaq 3b(%%rip), %%rax\n\t"
		"movq %%rax, %[cs]\n\t"
		"1:\n\t"
		"movq %[spins], %%rcx\n\t"
		"5:\n\t"
		"decq %%rcx\n\t"
		"jnz 5b\n\t"
		"movq %[cs], %%rax\n\t"
		"movq %%rax, (%[seen])\n\t"
		"2:\n\t"
		".pushsection .text.subject_rseq_abort, \"ax\"\n\t"
		/* the signature the kernel checks before an abort handler */
		".byte 0x0f, 0xb9, 0x3d\n\t"
		".long %c[sig]\n\t"
		"4:\n\t"
		"jmp %l[aborted]\n\t"
		".popsection\n\t"
		:
		: [cs] "m"(rs->rseq_cs), [spins] "i"(SPINS), [seen] "r"(&seen), [sig] "i"(RSEQ_SIG)
		: "memory", "cc", "rax", "rcx"
		: aborted);
	return seen == 0 ? CLEARED : COMMITTED;
aborted:
	return ABORTED;
}

static atomic_int stop;
static atomic_long passes[2], aborts[2];

/* Passes until told to stop; a pass that ran on after a cleared rseq_cs fails the subject. */
static void run(int who)
{
	struct rseq *rs = area();

	while (!atomic_load(&stop)) {
		switch (one_pass(rs)) {
		case CLEARED:
			subject_fail("thread %d finished an rseq critical section whose rseq_cs was cleared without an abort", who);
		case ABORTED:
			atomic_fetch_add(&aborts[who], 1);
			break;
		case COMMITTED:
			atomic_fetch_add(&passes[who], 1);
			break;
		}
		if (who == 0 && subject_term)
			atomic_store(&stop, 1);
	}
}

static void *second(void *arg)
{
	(void)arg;
	register_area();
	run(1);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;
	sigset_t term, old;

	subject_init(argc, argv);
	register_area();
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	if (pthread_create(&th, NULL, second, NULL) != 0)
		subject_fail("pthread_create");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	subject_ready();
	run(0);
	pthread_join(th, NULL);
	subject_log("passes %ld/%ld, aborted %ld/%ld", atomic_load(&passes[0]), atomic_load(&passes[1]),
		    atomic_load(&aborts[0]), atomic_load(&aborts[1]));
	subject_pass();
}
