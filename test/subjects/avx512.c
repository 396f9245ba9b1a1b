/*
 * avx512: distinctive values in all of zmm0-31 (so the ymm upper halves,
 * ZMM_Hi256 and Hi16_ZMM components) and in the opmask registers k1-k7,
 * held live by one asm loop that spins in user space (no syscall: the dump
 * catches it between two instructions) and compares the registers with the
 * expected bytes on every round until SIGTERM. A restore that misplaces an
 * XSAVE component (its offset comes from CPUID leaf 0xD) ends the loop with
 * a mismatch we then describe. Needs AVX-512F and BW (64-bit opmasks): the
 * test table skips it elsewhere, and it fails early if started anyway.
 */
#include "subject.h"

#include <string.h>

#define NZMM 32
#define NK 7
#define VEC_BYTES (NZMM * 64)
#define ALL_BYTES (VEC_BYTES + NK * 8)

static unsigned char want[ALL_BYTES] __attribute__((aligned(64)));
static unsigned char seen[ALL_BYTES] __attribute__((aligned(64)));

#define LOADZ(i) "vmovdqu64 " #i "*64(%[w]), %%zmm" #i "\n\t"
#define STOREZ(i) "vmovdqu64 %%zmm" #i ", " #i "*64(%[s])\n\t"
#define LOADK(i) "kmovq " #i "*8-8+2048(%[w]), %%k" #i "\n\t"
#define STOREK(i) "kmovq %%k" #i ", " #i "*8-8+2048(%[s])\n\t"
#define Z16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define Z32(M) Z16(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
#define K7(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

/* Returns 0 when SIGTERM ended the loop, 1 on a mismatch (seen[] holds the registers). */
__attribute__((target("avx512f,avx512bw"))) static int spin(void)
{
	int ret;
	__asm__ volatile(Z32(LOADZ) K7(LOADK)
			 "1:\n\t" Z32(STOREZ) K7(STOREK)
			 "lea (%[s]), %%rsi\n\t"
			 "lea (%[w]), %%rdi\n\t"
			 "mov $" "2104" ", %%rcx\n\t" /* ALL_BYTES */
			 "repe cmpsb\n\t"
			 "jne 2f\n\t"
			 "mov $20000, %%ecx\n\t"
			 "5: pause\n\t"
			 "dec %%ecx\n\t"
			 "jnz 5b\n\t"
			 "cmpl $0, %[term]\n\t"
			 "je 1b\n\t"
			 "mov $0, %[r]\n\t"
			 "jmp 4f\n\t"
			 "2: mov $1, %[r]\n\t"
			 "4:\n\t"
			 : [r] "=r"(ret)
			 : [w] "r"(want), [s] "r"(seen), [term] "m"(subject_term)
			 : "rcx", "rsi", "rdi", "memory", "cc",
			   "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
			   "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
			   "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30",
			   "xmm31", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
	return ret;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw"))
		subject_fail("this CPU has no AVX-512F/BW (the test table should have skipped it)");
	_Static_assert(ALL_BYTES == 2104, "the asm compares 2104 bytes");
	subject_fill(want, sizeof(want), 0x5a5a512);
	subject_ready();
	if (spin() != 0) {
		for (int i = 0; i < NZMM; i++)
			if (memcmp(seen + i * 64, want + i * 64, 64) != 0)
				subject_fail("zmm%d changed (bytes %s)", i,
					     memcmp(seen + i * 64, want + i * 64, 16) != 0 ? "0-15: xmm" :
					     memcmp(seen + i * 64 + 16, want + i * 64 + 16, 16) != 0 ? "16-31: ymm upper" : "32-63: zmm upper");
		for (int k = 1; k <= NK; k++)
			if (memcmp(seen + VEC_BYTES + (k - 1) * 8, want + VEC_BYTES + (k - 1) * 8, 8) != 0)
				subject_fail("k%d changed", k);
		subject_fail("registers changed");
	}
	subject_pass();
}
