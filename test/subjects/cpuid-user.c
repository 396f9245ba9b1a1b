/*
 * cpuid-user: not a checkpoint subject (not in the subject table) but a
 * helper of test/api/cpuinfo.test.ts: runs `cpuid` in user mode for each
 * LEAF:SUBLEAF argument (hex) and prints "leaf subleaf eax ebx ecx edx" in
 * hex, one line each: what any user process on this CPU is told, which a
 * hypervisor may make differ from the kernel's own cpuid (the driver's).
 */
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char *colon;
		unsigned leaf = (unsigned)strtoul(argv[i], &colon, 16);
		unsigned sub = *colon == ':' ? (unsigned)strtoul(colon + 1, NULL, 16) : 0;
		unsigned a, b, c, d;
		__cpuid_count(leaf, sub, a, b, c, d);
		printf("%x %x %x %x %x %x\n", leaf, sub, a, b, c, d);
	}
	return 0;
}
