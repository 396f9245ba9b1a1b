/*
 * The process `npm run demo:migrate` moves from one "host" to the other.
 *
 *   migrate-server SIZE_MIB ADDR PORT READY_FILE
 *
 * It maps SIZE_MIB of private anonymous memory and stamps every page with
 * (page number, generation); a separate table (on the heap) keeps each
 * page's generation. It listens on ADDR:PORT, writes its pid to
 * READY_FILE, takes one client, then every 100 ms:
 *   - writes 1/1000 of its pages (1% per second), each with its
 *     generation + 1 (the next pre-dump must copy exactly those again);
 *   - checks 1/20 of its pages against the table (the whole memory every
 *     2 s), so a page lost, zeroed or taken from a stale pre-dump is seen;
 *   - sends the client one line: "tick N pid P pages-bad B".
 * It reads what the client sends back (acks) and exits when the client
 * hangs up, or on SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

struct stamp {
	uint64_t page;
	uint64_t gen;
};

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_ready(const char *path)
{
	char tmp[4096], buf[32];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) { perror("ready file"); exit(1); }
	int n = snprintf(buf, sizeof(buf), "%d\n", getpid());
	if (write(fd, buf, n) != n) { perror("ready file"); exit(1); }
	close(fd);
	if (rename(tmp, path)) { perror("ready file"); exit(1); }
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s SIZE_MIB ADDR PORT READY_FILE\n", argv[0]);
		return 2;
	}
	size_t npages = strtoul(argv[1], NULL, 10) * (1024 * 1024 / PAGE);
	char *mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *gens = calloc(npages, sizeof(*gens));
	if (mem == MAP_FAILED || !gens) { perror("memory"); return 1; }
	for (size_t i = 0; i < npages; i++) {
		struct stamp *s = (struct stamp *)(mem + i * PAGE);
		s->page = i;
		s->gen = gens[i] = 1;
		/* Some content past the stamp, so pages are not mostly zeros. */
		memset(mem + i * PAGE + sizeof(*s), (int)(i & 0xff), 64);
	}

	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lsk = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
	if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[2]); return 2; }
	if (bind(lsk, (struct sockaddr *)&a, sizeof(a)) || listen(lsk, 1)) { perror("listen"); return 1; }
	write_ready(argv[4]);

	int sk = -1;
	while (sk < 0 && !stop) sk = accept(lsk, NULL, NULL);
	if (sk < 0) return 0;
	close(lsk);
	setsockopt(sk, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	size_t per_tick = npages / 1000 ? npages / 1000 : 1;
	size_t check_per_tick = npages / 20 ? npages / 20 : 1;
	size_t wcur = 0, ccur = 0;
	uint64_t tick = 0, bad = 0, next = now_ms();
	char line[128], in[4096];
	while (!stop) {
		for (size_t k = 0; k < per_tick; k++, wcur = (wcur + 1) % npages) {
			struct stamp *s = (struct stamp *)(mem + wcur * PAGE);
			s->gen = ++gens[wcur];
		}
		for (size_t k = 0; k < check_per_tick; k++, ccur = (ccur + 1) % npages) {
			struct stamp *s = (struct stamp *)(mem + ccur * PAGE);
			if (s->page != ccur || s->gen != gens[ccur]) {
				if (bad < 5)
					fprintf(stderr, "page %zu: stamp (%llu, %llu), expected (%zu, %llu)\n", ccur,
						(unsigned long long)s->page, (unsigned long long)s->gen, ccur,
						(unsigned long long)gens[ccur]);
				bad++;
			}
		}
		tick++;
		int n = snprintf(line, sizeof(line), "tick %llu pid %d pages-bad %llu\n", (unsigned long long)tick, getpid(),
				 (unsigned long long)bad);
		if (send(sk, line, n, MSG_NOSIGNAL) != n) break;

		next += 100;
		/* After a freeze (the final dump), go on from now rather than catch up in a burst. */
		if (next + 100 < now_ms()) next = now_ms();
		for (;;) {
			uint64_t t = now_ms();
			int wait = next > t ? (int)(next - t) : 0;
			struct pollfd p = { .fd = sk, .events = POLLIN };
			int r = poll(&p, 1, wait);
			if (r < 0 && errno == EINTR) {
				if (stop) break;
				continue;
			}
			if (r <= 0) break;
			ssize_t got = recv(sk, in, sizeof(in), 0);
			if (got == 0) return 0; /* the client hung up */
			if (got < 0 && errno != EINTR && errno != EAGAIN) { perror("recv"); return 1; }
		}
	}
	return 0;
}
