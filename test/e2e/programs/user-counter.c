/*
 * A new user's own small program, written without any criu-ts test library:
 * every 50 ms it prints an incrementing counter, its pid and the checksum of
 * a malloc'd buffer to stdout (a file, redirected by the shell that started
 * it). After a checkpoint and restore the numbering must carry on from
 * where it was, with the same pid and the same checksum.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BUF_BYTES (4 << 20)

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

int main(void)
{
	unsigned char *buf = malloc(BUF_BYTES);
	if (buf == NULL)
		return 1;
	for (size_t i = 0; i < BUF_BYTES; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	uint64_t sum = checksum(buf, BUF_BYTES);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	for (unsigned long counter = 0;; counter++) {
		uint64_t now = checksum(buf, BUF_BYTES);
		printf("count=%lu pid=%d sum=%016llx %s\n", counter, (int)getpid(), (unsigned long long)now,
		       now == sum ? "ok" : "CHANGED");
		fflush(stdout);
		nanosleep(&ts, NULL);
	}
}
