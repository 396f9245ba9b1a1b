/*
 * Run one command and report what it cost as a whole process: wall time
 * and the peak resident set size (ru_maxrss of wait4, in KiB). The
 * command's output goes to LOGFILE, so neither tool prints into the table.
 *
 * usage: measure [--keep-fd3] LOGFILE CMD [ARGS...]
 *   --keep-fd3  the command inherits fd 3 (an RPC socket: CMD swrk 3)
 * prints: "SECONDS MAXRSS_KIB EXIT_STATUS CPU_SECONDS" on stdout (CPU: user+sys of the
 *   command and of every child it waited for; on a shared machine the
 *   figure that depends least on the load)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int keep3 = argc > 1 && strcmp(argv[1], "--keep-fd3") == 0;
	if (keep3) {
		argv++;
		argc--;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: %s LOGFILE CMD [ARGS...]\n", argv[0]);
		return 2;
	}
	int log = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (log < 0) {
		perror(argv[1]);
		return 2;
	}
	double t0 = now_s();
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(log, 1);
		dup2(log, 2);
		close_range(keep3 ? 4 : 3, ~0u, 0);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("wait4");
		return 2;
	}
	double t = now_s() - t0;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	printf("%.6f %ld %d %.6f\n", t, ru.ru_maxrss, code, cpu);
	return 0;
}
