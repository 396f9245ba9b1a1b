/*
 * counter-loop: a busy-ish task. A volatile counter climbs by one per short
 * nanosleep and a data area carries a checksum. After SIGTERM we check that
 * every step was +1 (a restore that loses or replays memory breaks this),
 * that the counter moved on after ready, and that the data area is intact.
 */
#include "subject.h"

#define DATA_BYTES (1 << 20)

static volatile uint64_t counter;

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	uint64_t sum;
	unsigned char *data = subject_data(DATA_BYTES, 0xc0ffee, &sum);

	subject_count_until_term(&counter, 10);
	if (subject_hash(data, DATA_BYTES) != sum)
		subject_fail("data area checksum changed");
	subject_pass();
}
