/* criu-ts test subject library: see subject.h for the protocol. */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

volatile sig_atomic_t subject_term;

static const char *out_path;
static int opt_argc;
static char **opt_argv;

static void on_term(int sig)
{
	(void)sig;
	subject_term = 1;
}

void subject_log(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "[%d] ", getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* Temp + rename: the harness polls these files and must never see half of one. */
void subject_write_atomic(const char *path, const char *text)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		subject_log("open %s: %s", tmp, strerror(errno));
		_exit(2);
	}
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || close(fd) != 0 || rename(tmp, path) != 0) {
		subject_log("write %s: %s", path, strerror(errno));
		_exit(2);
	}
}

/*
 * --netns 1: the subject runs in a net namespace of its own, lo up and
 * nothing else, as a container's: its sockets are then the namespace's,
 * and the restore must put them in a new one.
 */
static void own_netns(void)
{
	if (unshare(CLONE_NEWNET) != 0) {
		subject_log("unshare(CLONE_NEWNET): %s", strerror(errno));
		exit(2);
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
		subject_log("lo: %s", strerror(errno));
		exit(2);
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
		subject_log("lo up: %s", strerror(errno));
		exit(2);
	}
	close(s);
}

void subject_init(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--out") == 0)
			out_path = argv[i + 1];
	if (out_path == NULL) {
		fprintf(stderr, "usage: %s --out OUTFILE [args]\n", argv[0]);
		exit(2);
	}
	opt_argc = argc;
	opt_argv = argv;
	if (subject_opt_long("netns", 0))
		own_netns();
	/* No SA_RESTART: a subject blocked in a syscall should see the end signal. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0) {
		subject_log("sigaction: %s", strerror(errno));
		exit(2);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
}

const char *subject_opt(const char *name, const char *dflt)
{
	for (int i = 1; i + 1 < opt_argc; i++)
		if (opt_argv[i][0] == '-' && opt_argv[i][1] == '-' && strcmp(opt_argv[i] + 2, name) == 0)
			return opt_argv[i + 1];
	return dflt;
}

long subject_opt_long(const char *name, long dflt)
{
	const char *v = subject_opt(name, NULL);
	return v == NULL ? dflt : strtol(v, NULL, 0);
}

/*
 * The pid the harness knows us by: /proc/self names us in the pid namespace
 * of the /proc mount, the harness's, also when we are a pid namespace's
 * init (getpid() 1).
 */
static pid_t harness_pid(void)
{
	char b[32];
	ssize_t n = readlink("/proc/self", b, sizeof(b) - 1);
	if (n <= 0)
		return getpid();
	b[n] = 0;
	return (pid_t)atoi(b);
}

void subject_ready(void)
{
	char path[4096], text[32];
	snprintf(path, sizeof(path), "%s.ready", out_path);
	snprintf(text, sizeof(text), "%d\n", harness_pid());
	subject_write_atomic(path, text);
	subject_log("ready");
}

void subject_wait_term(void)
{
	/* Block SIGTERM while testing the flag so a signal between test and sleep is not lost. */
	sigset_t term, old, wait_mask;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	wait_mask = old;
	sigdelset(&wait_mask, SIGTERM);
	while (!subject_term)
		sigsuspend(&wait_mask);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void subject_pass(void)
{
	subject_write_atomic(out_path, "PASS\n");
	subject_log("PASS");
	exit(0);
}

void subject_fail(const char *fmt, ...)
{
	char reason[2048], text[2100];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text), "FAIL: %s\n", reason);
	subject_write_atomic(out_path, text);
	subject_log("FAIL: %s", reason);
	exit(1);
}

uint64_t subject_hash(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL, w;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

uint64_t subject_rand(uint64_t *s)
{
	/* xorshift64*: fast, deterministic, good enough to make every page distinct. */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

void subject_fill(void *p, size_t len, uint64_t seed)
{
	uint64_t s = seed ? seed : 1, w;
	unsigned char *b = p;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		w = subject_rand(&s);
		memcpy(b + i, &w, 8);
	}
	for (; i < len; i++)
		b[i] = (unsigned char)subject_rand(&s);
}

int subject_vma_perms(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	unsigned long a = (unsigned long)addr, s, e;
	int ret = -1;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) == 3 && a >= s && a < e) {
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

int64_t subject_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void subject_at(int want, int fd, const char *what)
{
	if (fd < 0 || dup2(fd, want) != want)
		subject_fail("%s (fd %d): errno %d", what, want, errno);
	if (fd != want)
		close(fd);
}

void subject_setint(int fd, int level, int name, int v, const char *what)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)) != 0)
		subject_fail("setsockopt %s on %d: errno %d", what, fd, errno);
}

int subject_getint(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, level, name, &v, &l) != 0)
		subject_fail("getsockopt %d/%d on %d: errno %d", level, name, fd, errno);
	return v;
}

unsigned char *subject_data(size_t len, uint64_t seed, uint64_t *sum)
{
	unsigned char *data = malloc(len);
	if (data == NULL)
		subject_fail("malloc %zu", len);
	subject_fill(data, len, seed);
	*sum = subject_hash(data, len);
	return data;
}

static const struct timespec fpu_tick = { 0, 5000000 };

/*
 * xmm0-15 (16 bytes each) then st0 as a double, all from want; the loop
 * stores them into seen, compares, sleeps 5 ms (a raw nanosleep: libc would
 * not keep the xmm state), and ends when *stop is set (0) or on a mismatch (1).
 */
int subject_fpu_loop(const unsigned char *want, unsigned char *seen, volatile int *stop)
{
	int ret;
#define LD(i) "movdqu " #i "*16(%[w]), %%xmm" #i "\n\t"
#define ST(i) "movdqu %%xmm" #i ", " #i "*16(%[s])\n\t"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
	__asm__ volatile(ALL(LD) "fldl 256(%[w])\n\t"
			 "1:\n\t" ALL(ST) "fstl 256(%[s])\n\t"
			 "lea (%[s]), %%rsi\n\t"
			 "lea (%[w]), %%rdi\n\t"
			 "mov $264, %%rcx\n\t"
			 "repe cmpsb\n\t"
			 "jne 2f\n\t"
			 "cmpl $0, %[stop]\n\t"
			 "jne 3f\n\t"
			 "mov $35, %%eax\n\t" /* nanosleep(&tick, NULL): a raw syscall keeps xmm state */
			 "lea %[tick], %%rdi\n\t"
			 "xor %%esi, %%esi\n\t"
			 "syscall\n\t"
			 "jmp 1b\n\t"
			 "2: mov $1, %[r]\n\t"
			 "jmp 4f\n\t"
			 "3: mov $0, %[r]\n\t"
			 "4: fstp %%st(0)\n\t"
			 : [r] "=r"(ret)
			 : [w] "r"(want), [s] "r"(seen), [stop] "m"(*stop), [tick] "m"(fpu_tick)
			 : "rax", "rcx", "rsi", "rdi", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
			   "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	return ret;
#undef ALL
#undef ST
#undef LD
}

void subject_expect_recv(int fd, const char *want, const char *what)
{
	char buf[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		subject_fail("%s: nothing within 5 s", what);
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n) != 0)
		subject_fail("%s: got %zd bytes", what, n);
}

void subject_openpty(int master_at, int slave_at, int slave_flags, char name[64])
{
	subject_at(master_at, posix_openpt(O_RDWR | O_NOCTTY), "ptmx");
	if (grantpt(master_at) || unlockpt(master_at))
		subject_fail("unlockpt: errno %d", errno);
	if (ptsname_r(master_at, name, 64))
		subject_fail("ptsname: errno %d", errno);
	subject_at(slave_at, open(name, slave_flags), "pty slave");
}

int subject_new_file(const char *path, mode_t mode, const void *data, size_t len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		subject_fail("%s: %s", path, strerror(errno));
	return fd;
}

int subject_write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "we");
	if (f == NULL)
		return -1;
	int ok = fputs(s, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

long subject_read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;
	if (f == NULL || fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

unsigned char *subject_map_filled(int fd, size_t size, size_t map_len, uint64_t seed, uint64_t *sum, int keep_at, const char *what)
{
	unsigned char *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		subject_fail("mmap %s: errno %d", what, errno);
	subject_fill(p, size, seed);
	*sum = subject_hash(p, size);
	if (keep_at >= 0 && dup2(fd, keep_at) != keep_at)
		subject_fail("dup2 %s to %d: errno %d", what, keep_at, errno);
	if (fd != keep_at)
		close(fd);
	return p;
}

struct subject_counts subject_count_until_term(volatile uint64_t *counter, int after)
{
	struct timespec ts = { 0, 1000000 };
	uint64_t bad_steps = 0;
	struct subject_counts c;

	subject_ready();
	c.at_ready = *counter;
	while (!subject_term) {
		uint64_t prev = *counter;
		*counter = prev + 1;
		if (*counter != prev + 1)
			bad_steps++;
		nanosleep(&ts, NULL); /* EINTR only from SIGTERM, which ends the loop */
	}
	c.at_term = *counter;
	for (int i = 0; i < after; i++) {
		*counter = *counter + 1;
		nanosleep(&ts, NULL);
	}
	if (bad_steps != 0)
		subject_fail("%llu non-monotonic steps", (unsigned long long)bad_steps);
	if (c.at_term < c.at_ready || *counter != c.at_term + (uint64_t)after)
		subject_fail("counter went backwards: ready %llu term %llu now %llu", (unsigned long long)c.at_ready,
			     (unsigned long long)c.at_term, (unsigned long long)*counter);
	return c;
}

unsigned int subject_sockaddr(int family, const char *ip, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &s->sin_addr) != 1)
			subject_fail("bad IPv4 address %s", ip);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)port);
	if (inet_pton(AF_INET6, ip, &s->sin6_addr) != 1)
		subject_fail("bad IPv6 address %s", ip);
	return sizeof(*s);
}

void subject_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void subject_readn(int fd, void *p, size_t n, const char *what)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 5000) != 1)
			subject_fail("%s: %zu of %zu bytes, then nothing", what, got, n);
		ssize_t r = recv(fd, (unsigned char *)p + got, n - got, 0);
		if (r <= 0)
			subject_fail("%s: recv %zd errno %d after %zu of %zu bytes", what, r, errno, got, n);
		got += (size_t)r;
	}
}


void subject_on_signal(int sig, void (*fn)(int, siginfo_t *, void *), int mask_sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (mask_sig != 0)
		sigaddset(&sa.sa_mask, mask_sig);
	if (sigaction(sig, &sa, NULL) != 0)
		subject_fail("sigaction(%d): %s", sig, strerror(errno));
}

void *subject_shared_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		subject_fail("mmap %zu shared anonymous bytes: %s", len, strerror(errno));
	return p;
}

void subject_pair_at(int type, int a, int b)
{
	int sv[2];
	if (socketpair(AF_UNIX, type, 0, sv) != 0)
		subject_fail("socketpair: %s", strerror(errno));
	subject_at(a, sv[0], "socketpair");
	subject_at(b, sv[1], "socketpair");
}

int subject_port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &l) != 0)
		subject_fail("getsockname %d: errno %d", fd, errno);
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

long subject_seccomp_deny(int nr, int err, unsigned int flags)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned int)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof code / sizeof code[0], code };
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}
