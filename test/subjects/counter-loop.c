/*
 * counter-loop: a busy-ish task. A volatile counter climbs by one per short
 * nanosleep and a data area carries a checksum. After SIGTERM we check that
 * every step was +1 (a restore that loses or replays memory breaks this),
 * that the counter moved on after ready, and that the data area is intact.
 */
#include "subject.h"

#include <stdlib.h>
#include <time.h>

#define DATA_BYTES (1 << 20)

static volatile uint64_t counter;

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	unsigned char *data = malloc(DATA_BYTES);
	if (data == NULL)
		subject_fail("malloc");
	subject_fill(data, DATA_BYTES, 0xc0ffee);
	uint64_t sum = subject_hash(data, DATA_BYTES);
	uint64_t bad_steps = 0;
	struct timespec ts = { 0, 1000000 };

	subject_ready();
	uint64_t at_ready = counter;
	while (!subject_term) {
		uint64_t prev = counter;
		counter = prev + 1;
		if (counter != prev + 1)
			bad_steps++;
		nanosleep(&ts, NULL); /* EINTR only from SIGTERM, which ends the loop */
	}
	/* A few more steps after the signal prove the loop still runs. */
	uint64_t at_term = counter;
	for (int i = 0; i < 10; i++) {
		counter = counter + 1;
		nanosleep(&ts, NULL);
	}
	if (bad_steps != 0)
		subject_fail("%llu non-monotonic steps", (unsigned long long)bad_steps);
	if (at_term < at_ready || counter != at_term + 10)
		subject_fail("counter went backwards: ready %llu term %llu now %llu", (unsigned long long)at_ready,
			     (unsigned long long)at_term, (unsigned long long)counter);
	if (subject_hash(data, DATA_BYTES) != sum)
		subject_fail("data area checksum changed");
	subject_pass();
}
