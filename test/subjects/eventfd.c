/*
 * eventfd: 20 eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK); 21 a plain counter
 * holding 0x100000005 (above eventfd2's 32-bit initial value).
 * After SIGTERM: 20 gives 1 three times then EAGAIN, and is still
 * non-blocking; 21 gives the whole count in one read.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	subject_at(20, eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK), "eventfd semaphore");
	subject_at(21, eventfd(0, 0), "eventfd counter");
	uint64_t big = 0x100000005ULL;
	if (write(21, &big, 8) != 8)
		subject_fail("write counter");

	subject_ready();
	subject_wait_term();

	uint64_t v;
	for (int i = 0; i < 3; i++)
		if (read(20, &v, 8) != 8 || v != 1)
			subject_fail("semaphore read %d: errno %d value %llu", i, errno, (unsigned long long)v);
	if (read(20, &v, 8) != -1 || errno != EAGAIN)
		subject_fail("semaphore not empty or blocking after 3 reads");
	if (!(fcntl(20, F_GETFL) & O_NONBLOCK))
		subject_fail("O_NONBLOCK lost");
	if (read(21, &v, 8) != 8 || v != big)
		subject_fail("counter 0x%llx", (unsigned long long)v);
	subject_pass();
}
