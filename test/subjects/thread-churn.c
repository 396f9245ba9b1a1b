/*
 * thread-churn: threads come and go all the time (a spawner thread creates
 * and joins short-lived workers back to back) while the main thread counts
 * like counter-loop. A dump can meet a thread that exits under it; whatever
 * it decides, the task must carry on unharmed: after SIGTERM the counter
 * kept climbing by +1 steps, the data area is intact and the spawner still
 * turns over threads. Build with -pthread.
 */
#include "subject.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define DATA_BYTES (1 << 20)

static volatile uint64_t counter;
static volatile uint64_t spawned;
static volatile int stop_spawning;

static void *worker(void *arg)
{
	(void)arg;
	return NULL;
}

static void *spawner(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 200000 };
	while (!stop_spawning) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) == 0) {
			pthread_join(t, NULL);
			spawned = spawned + 1;
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	uint64_t sum;
	unsigned char *data = subject_data(DATA_BYTES, 0x7e7e, &sum);
	/* Threads start with SIGTERM blocked, so only the main thread takes it. */
	pthread_t sp = subject_thread(spawner, NULL);
	uint64_t bad_steps = 0;
	struct timespec ts = { 0, 1000000 };
	/* Ready once a worker has come and gone: its stack (then cached) and
	 * the spawner's malloc arena exist before anyone takes a snapshot. */
	while (spawned < 1)
		nanosleep(&ts, NULL);

	subject_ready();
	uint64_t at_ready = counter;
	while (!subject_term) {
		uint64_t prev = counter;
		counter = prev + 1;
		if (counter != prev + 1)
			bad_steps++;
		nanosleep(&ts, NULL);
	}
	uint64_t at_term = counter;
	uint64_t spawned_at_term = spawned;
	for (int i = 0; i < 20; i++) {
		counter = counter + 1;
		nanosleep(&ts, NULL);
	}
	stop_spawning = 1;
	pthread_join(sp, NULL);
	if (bad_steps != 0)
		subject_fail("%llu non-monotonic steps", (unsigned long long)bad_steps);
	if (at_term <= at_ready || counter != at_term + 20)
		subject_fail("counter did not move on: ready %llu term %llu now %llu", (unsigned long long)at_ready,
			     (unsigned long long)at_term, (unsigned long long)counter);
	if (spawned <= spawned_at_term)
		subject_fail("spawner stopped turning over threads (%llu)", (unsigned long long)spawned);
	if (subject_hash(data, DATA_BYTES) != sum)
		subject_fail("data area checksum changed");
	subject_pass();
}
