/*
 * fpu: distinctive values in x87 st0, xmm0-15 and (with AVX) the upper
 * halves of ymm0-15, held live in registers by one asm loop that stores
 * them, compares against the expected bytes and sleeps 1 ms (a raw
 * nanosleep syscall, which preserves vector state) until SIGTERM. Any
 * change, e.g. a restore that drops or corrupts xstate, ends the loop with
 * a mismatch we then describe.
 */
#include "subject.h"

#include <string.h>
#include <time.h>

#define NREG 16
/* ymm0..15 (32 bytes each; only 16 used without AVX), then st0 as a double. */
static unsigned char want[NREG * 32 + 8] __attribute__((aligned(64)));
static unsigned char seen[NREG * 32 + 8] __attribute__((aligned(64)));
static const struct timespec tick = { 0, 1000000 };

#define LOAD_AVX(i) "vmovdqu " #i "*32(%[w]), %%ymm" #i "\n\t"
#define STORE_AVX(i) "vmovdqu %%ymm" #i ", " #i "*32(%[s])\n\t"
#define LOAD_SSE(i) "movdqu " #i "*32(%[w]), %%xmm" #i "\n\t"
#define STORE_SSE(i) "movdqu %%xmm" #i ", " #i "*32(%[s])\n\t"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)

/* Returns 0 when SIGTERM ended the loop, 1 on a mismatch (seen[] holds the registers). */
#define FPU_LOOP(LOAD, STORE, CMPLEN)                                                       \
	__asm__ volatile(ALL(LOAD) "fldl " #CMPLEN "(%[w])\n\t"                              \
			 "1:\n\t" ALL(STORE) "fstl " #CMPLEN "(%[s])\n\t"                    \
			 "lea (%[s]), %%rsi\n\t"                                               \
			 "lea (%[w]), %%rdi\n\t"                                               \
			 "mov $" #CMPLEN "+8, %%rcx\n\t"                                       \
			 "repe cmpsb\n\t"                                                      \
			 "jne 2f\n\t"                                                          \
			 "cmpl $0, %[term]\n\t"                                                \
			 "jne 3f\n\t"                                                          \
			 "mov $35, %%eax\n\t" /* nanosleep(&tick, NULL) */                    \
			 "lea %[tick], %%rdi\n\t"                                              \
			 "xor %%esi, %%esi\n\t"                                                \
			 "syscall\n\t"                                                         \
			 "jmp 1b\n\t"                                                          \
			 "2: mov $1, %[r]\n\t"                                                 \
			 "jmp 4f\n\t"                                                          \
			 "3: mov $0, %[r]\n\t"                                                 \
			 "4: fstp %%st(0)\n\t"                                                 \
			 : [r] "=r"(ret)                                                       \
			 : [w] "r"(want), [s] "r"(seen), [term] "m"(subject_term), [tick] "m"(tick) \
			 : "rax", "rcx", "rsi", "rdi", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2",    \
			   "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",   \
			   "xmm12", "xmm13", "xmm14", "xmm15")

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int avx = __builtin_cpu_supports("avx");
	for (int i = 0; i < NREG * 32; i++)
		want[i] = (unsigned char)(i * 7 + 0x11);
	double st0 = 3.14159265358979 * 1234.5;
	memcpy(want + NREG * 32, &st0, 8);
	if (!avx)
		subject_log("no AVX: checking x87 and SSE only");

	subject_ready();
	int ret;
	if (avx)
		FPU_LOOP(LOAD_AVX, STORE_AVX, 512);
	else {
		/* Without AVX only the low 16 bytes of each slot are registers; mirror them into seen's upper halves. */
		for (int i = 0; i < NREG; i++)
			memcpy(seen + i * 32 + 16, want + i * 32 + 16, 16);
		FPU_LOOP(LOAD_SSE, STORE_SSE, 512);
	}
	if (ret != 0) {
		for (int i = 0; i < NREG; i++)
			if (memcmp(seen + i * 32, want + i * 32, 32) != 0)
				subject_fail("%s%d changed", avx ? "ymm" : "xmm", i);
		subject_fail("x87 st0 changed");
	}
	subject_pass();
}
