/*
 * The benchmark subjects' "ready" handshake: a line (usually the pid) is
 * written to a temporary file beside PATH and renamed onto it, so the
 * bench never reads half a line. Returns 0, or -1 after perror.
 */
#ifndef BENCH_READY_H
#define BENCH_READY_H
#include <stdarg.h>
#include <stdio.h>

__attribute__((format(printf, 2, 3)))
static int write_ready(const char *path, const char *fmt, ...)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	va_list ap;
	va_start(ap, fmt);
	int bad = f == NULL || vfprintf(f, fmt, ap) < 0;
	va_end(ap);
	if (f != NULL && fclose(f) != 0)
		bad = 1;
	if (bad || rename(tmp, path) != 0) {
		perror("ready file");
		return -1;
	}
	return 0;
}
#endif
