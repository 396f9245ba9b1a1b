/*
 * amx-perm: the process asks for permission to use AMX tile data
 * (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)) and uses a tile
 * instruction once. After restore the permission must still be there
 * (ARCH_GET_XCOMP_PERM) and the tile instruction must run: without the
 * permission the kernel kills the task with SIGILL. Needs AMX (the test
 * table skips it elsewhere).
 */
#include "subject.h"

#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static void tile_release(void)
{
	/* TILERELEASE: touches the tile state, so it traps without the permission. */
	__asm__ volatile(".byte 0xc4, 0xe2, 0x78, 0x49, 0xc0" ::: "memory");
}

static uint64_t perm(void)
{
	uint64_t p = 0;
	if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &p))
		subject_fail("ARCH_GET_XCOMP_PERM: %m");
	return p;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA))
		subject_fail("ARCH_REQ_XCOMP_PERM: %m");
	tile_release();
	uint64_t before = perm();
	if (!(before & (1ull << XFEATURE_XTILEDATA)))
		subject_fail("no XTILEDATA permission after asking for it (0x%llx)", (unsigned long long)before);
	subject_ready();
	subject_wait_term();
	uint64_t after = perm();
	if (after != before)
		subject_fail("XSAVE permissions 0x%llx, were 0x%llx", (unsigned long long)after, (unsigned long long)before);
	tile_release();
	subject_pass();
}
