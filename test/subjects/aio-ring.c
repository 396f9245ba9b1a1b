/*
 * aio-ring: AIO contexts (io_setup) survive with their rings: the context
 * id (the ring's address), the kernel's number for it (a first context was
 * destroyed, so the numbers start at 1), the ring size, head and tail (one ring has gone
 * around once), completed events not yet reaped (with their aio_data), and
 * the context still takes new requests afterwards. --criu-shape 1 leaves
 * out the kernel's numbers: CRIU 4.2's restore numbers the rings anew (its
 * own dump of this subject comes back with 1 and 0), so that is what a
 * restore by CRIU of our images can show (test/e2e/criu-restores-ours).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ring {
	unsigned id, nr, head, tail, magic, compat, incompat, header_length;
	struct io_event events[];
};

static int fd;
static char byte;

static void submit(aio_context_t ctx, uint64_t data)
{
	struct iocb cb = { 0 }, *cbp = &cb;
	cb.aio_data = data;
	cb.aio_fildes = (uint32_t)fd;
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_buf = (uintptr_t)&byte;
	cb.aio_nbytes = 1;
	if (syscall(__NR_io_submit, ctx, 1, &cbp) != 1)
		subject_fail("io_submit: %s", strerror(errno));
}

static uint64_t reap(aio_context_t ctx)
{
	struct io_event ev;
	struct timespec ts = { 1, 0 };
	if (syscall(__NR_io_getevents, ctx, 1, 1, &ev, &ts) != 1)
		subject_fail("io_getevents: %s", strerror(errno));
	return ev.data;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	aio_context_t z = 0, a = 0, b = 0;
	if (fd < 0 || syscall(__NR_io_setup, 8, &z) != 0 || syscall(__NR_io_setup, 64, &a) != 0 || syscall(__NR_io_setup, 1000, &b) != 0)
		subject_fail("setup: %s", strerror(errno));
	if (syscall(__NR_io_destroy, z) != 0)
		subject_fail("io_destroy: %s", strerror(errno));
	struct ring *ra = (struct ring *)a, *rb = (struct ring *)b;
	/* a: once around the ring, reaping every other one: tail < head at the end. */
	for (unsigned i = 0; i < ra->nr + 2; i++) {
		submit(a, i);
		if (i % 2)
			reap(a);
	}
	/* b: three completed events left unreaped. */
	for (uint64_t i = 0; i < 3; i++)
		submit(b, 0xb0 + i);
	unsigned id[2] = { ra->id, rb->id };
	unsigned nr[2] = { ra->nr, rb->nr }, head[2] = { ra->head, rb->head }, tail[2] = { ra->tail, rb->tail };
	subject_log("a: nr %u head %u tail %u; b: nr %u head %u tail %u", nr[0], head[0], tail[0], nr[1], head[1], tail[1]);

	subject_ready();
	subject_wait_term();

	if (subject_opt_long("criu-shape", 0) == 0 && (ra->id != id[0] || rb->id != id[1]))
		subject_fail("kernel ids %u and %u, were %u and %u", ra->id, rb->id, id[0], id[1]);
	if (ra->nr != nr[0] || ra->head != head[0] || ra->tail != tail[0])
		subject_fail("ring a: nr %u head %u tail %u, was %u %u %u", ra->nr, ra->head, ra->tail, nr[0], head[0], tail[0]);
	if (rb->nr != nr[1] || rb->head != head[1] || rb->tail != tail[1])
		subject_fail("ring b: nr %u head %u tail %u, was %u %u %u", rb->nr, rb->head, rb->tail, nr[1], head[1], tail[1]);
	for (uint64_t i = 0; i < 3; i++) {
		uint64_t d = reap(b);
		if (d != 0xb0 + i)
			subject_fail("ring b: event %llu has data 0x%llx", (unsigned long long)i, (unsigned long long)d);
	}
	/* Both contexts still work, and the next event lands at the old tail. */
	submit(a, 0xa1);
	if (ra->tail != (tail[0] + 1) % nr[0])
		subject_fail("ring a: tail %u after one more request, expected %u", ra->tail, (tail[0] + 1) % nr[0]);
	while (ra->head != ra->tail) {
		if (reap(a) == 0xa1)
			break;
	}
	submit(b, 0xb9);
	if (reap(b) != 0xb9)
		subject_fail("ring b: the new event did not come back");
	if (syscall(__NR_io_destroy, a) != 0 || syscall(__NR_io_destroy, b) != 0)
		subject_fail("io_destroy: %s", strerror(errno));
	subject_pass();
}
