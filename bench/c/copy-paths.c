/*
 * The two ways a dumper outside the task can put its pages into a pages
 * file, timed apart (docs/performance.md, "One copy at dump"):
 *
 *   write  process_vm_readv into one reused buffer, then pwrite(2) it:
 *          two copies (what criu-ts does, on an io_uring worker)
 *   map    the file mapped MAP_SHARED a window at a time,
 *          MADV_POPULATE_WRITE, process_vm_readv straight into the
 *          window, munmap: one copy, but every page of the file is a fresh
 *          page of our address space
 *   read   process_vm_readv into the reused buffer only (the floor)
 *
 * Prints the CPU (user+sys, getrusage) of each part. On a host whose
 * first touch of a fresh user page is dear (a VM with shadow page tables)
 * `map` loses to `write` whatever its one copy saves.
 *
 * usage: copy-paths PID ADDR LEN OUT_FILE write|map|read [WINDOW_KIB]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double cpu_s(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static int read_into(pid_t pid, void *to, unsigned long from, size_t len)
{
	struct iovec l = { to, len }, r = { (void *)from, len };
	if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)len) {
		perror("process_vm_readv");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: %s PID ADDR LEN OUT_FILE write|map|read [WINDOW_KIB]\n", argv[0]);
		return 2;
	}
	pid_t pid = atoi(argv[1]);
	unsigned long addr = strtoul(argv[2], NULL, 0);
	size_t len = strtoul(argv[3], NULL, 0);
	const char *mode = argv[5];
	size_t win = (argc > 6 ? strtoul(argv[6], NULL, 0) : 1024) << 10;
	int fd = open(argv[4], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror("open");
		return 1;
	}
	char *buf = aligned_alloc(4096, win);
	double t_map = 0, t_pop = 0, t_read = 0, t_write = 0, t_unmap = 0, c;
	if (strcmp(mode, "map") == 0 && ftruncate(fd, len) != 0) {
		perror("ftruncate");
		return 1;
	}
	for (size_t off = 0; off < len; off += win) {
		size_t n = len - off < win ? len - off : win;
		if (strcmp(mode, "map") == 0) {
			c = cpu_s();
			char *w = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
			t_map += cpu_s() - c;
			if (w == MAP_FAILED) {
				perror("mmap");
				return 1;
			}
			c = cpu_s();
			if (madvise(w, n, MADV_POPULATE_WRITE) != 0) {
				perror("madvise");
				return 1;
			}
			t_pop += cpu_s() - c;
			c = cpu_s();
			if (read_into(pid, w, addr + off, n) != 0)
				return 1;
			t_read += cpu_s() - c;
			c = cpu_s();
			munmap(w, n);
			t_unmap += cpu_s() - c;
			continue;
		}
		c = cpu_s();
		if (read_into(pid, buf, addr + off, n) != 0)
			return 1;
		t_read += cpu_s() - c;
		if (strcmp(mode, "write") == 0) {
			c = cpu_s();
			if (pwrite(fd, buf, n, off) != (ssize_t)n) {
				perror("pwrite");
				return 1;
			}
			t_write += cpu_s() - c;
		}
	}
	close(fd);
	printf("%s window %zu KiB: mmap %.3f populate %.3f readv %.3f write %.3f munmap %.3f total %.3f s CPU\n", mode, win >> 10,
	       t_map, t_pop, t_read, t_write, t_unmap, t_map + t_pop + t_read + t_write + t_unmap);
	return 0;
}
