/*
 * ipc-ns: a task in uts and ipc namespaces of its own (it unshares them
 * itself, before anything else) holding SysV objects, and a child in them
 * too. Kept across a restore:
 * - host and domain name; an ipc sysctl (msgmnb) set in the namespace;
 * - shm segment A (id after a removed one, so not 0), attached read-write
 *   with a pattern, attached a second time read-only, its middle page never
 *   touched; the child shares the read-write attachment (inherited);
 * - shm segment B with a key, contents, not attached;
 * - shm segment C attached and removed (IPC_RMID): still there, still
 *   marked for removal, gone from the namespace's list once detached;
 * - a semaphore set with values 1, 7, 42; a message queue with three
 *   messages of types 5, 2, 9 (one with binary data) and a byte limit.
 * At check time the child writes a token into A; the parent must see it.
 * For the refusals: --host-ns 1 attaches a segment in the caller's own ipc
 * namespace (removed at once), --nested-uts 1 adds a child in yet another
 * uts namespace. --criu-shape 1 keeps to what CRIU 4.2 restores too: no
 * segment C (CRIU does not remove it again) and the queue's default byte
 * limit (CRIU does not set it).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define A_SIZE (3 * PAGE + 100)
#define B_SIZE (2 * PAGE)
#define KEY_B 0x1b1b
#define KEY_SEM 0x5e5
#define KEY_MSG 0x3e5
#define HOST "criu-ts-ipc-ns"
#define DOMAIN "ipc.example"

union semun { int val; struct semid_ds *buf; unsigned short *array; };

struct msg { long mtype; char text[64]; };

static const struct { long type; const char *text; size_t len; } MSGS[] = {
	{ 5, "first message", 13 },
	{ 2, "second\0with\x01binary\xff", 19 },
	{ 9, "3", 1 },
};

static int shm_a, shm_b, shm_c = -1, sem_id, msg_id;
static int with_c = 1;
static unsigned long qbytes;
static unsigned char *a_rw, *a_ro, *c_at;
static uint64_t a_hash;

static const char *check_names(void)
{
	static char why[256];
	struct utsname u;
	if (uname(&u) != 0)
		return "uname failed";
	if (strcmp(u.nodename, HOST) != 0 || strcmp(u.domainname, DOMAIN) != 0) {
		snprintf(why, sizeof(why), "names are %s / %s", u.nodename, u.domainname);
		return why;
	}
	return NULL;
}

static const char *child_check(void *arg)
{
	(void)arg;
	const char *why = check_names();
	if (why)
		return why;
	if (subject_hash(a_rw + PAGE * 2, A_SIZE - PAGE * 2) != a_hash)
		return "child: segment A's contents changed";
	a_rw[0] = 0x7c; /* the parent must see it */
	return NULL;
}

/* Namespaces, names, a sysctl, the segments, A attached and filled. */
static void setup(void)
{
	if (unshare(CLONE_NEWUTS | CLONE_NEWIPC) != 0)
		subject_fail("unshare: %s", strerror(errno));
	if (sethostname(HOST, strlen(HOST)) != 0 || setdomainname(DOMAIN, strlen(DOMAIN)) != 0)
		subject_fail("set names: %s", strerror(errno));
	if (subject_write_file("/proc/sys/kernel/msgmnb", "32000") != 0)
		subject_fail("set msgmnb: %s", strerror(errno));

	int gone = shmget(IPC_PRIVATE, PAGE, 0600);
	if (gone < 0 || shmctl(gone, IPC_RMID, NULL) != 0)
		subject_fail("first segment: %s", strerror(errno));
	shm_a = shmget(IPC_PRIVATE, A_SIZE, 0640);
	shm_b = shmget(KEY_B, B_SIZE, IPC_CREAT | IPC_EXCL | 0604);
	if (with_c)
		shm_c = shmget(IPC_PRIVATE, PAGE, 0600);
	if (shm_a < 0 || shm_b < 0 || (with_c && shm_c < 0))
		subject_fail("shmget: %s", strerror(errno));
	if (shm_a == 0)
		subject_fail("segment A got id 0 after a removed one");
	a_rw = shmat(shm_a, NULL, 0);
	if (a_rw == (void *)-1)
		subject_fail("shmat A: %s", strerror(errno));
	subject_fill(a_rw, PAGE, 0xa1);
	subject_fill(a_rw + PAGE * 2, A_SIZE - PAGE * 2, 0xa3); /* page 1 stays a hole */
	a_hash = subject_hash(a_rw + PAGE * 2, A_SIZE - PAGE * 2);
}

/* After the child is forked: it shares only A's read-write attachment. */
static void setup_rest(void)
{
	a_ro = shmat(shm_a, NULL, SHM_RDONLY);
	unsigned char *b = shmat(shm_b, NULL, 0);
	if (a_ro == (void *)-1 || b == (void *)-1)
		subject_fail("shmat: %s", strerror(errno));
	subject_fill(b, B_SIZE, 0xb0);
	if (shmdt(b) != 0)
		subject_fail("shmdt B: %s", strerror(errno));
	if (with_c) {
		c_at = shmat(shm_c, NULL, 0);
		if (c_at == (void *)-1)
			subject_fail("shmat C: %s", strerror(errno));
		memset(c_at, 0xcc, PAGE);
		if (shmctl(shm_c, IPC_RMID, NULL) != 0)
			subject_fail("remove C: %s", strerror(errno));
	}

	sem_id = semget(KEY_SEM, 3, IPC_CREAT | IPC_EXCL | 0600);
	unsigned short vals[3] = { 1, 7, 42 };
	if (sem_id < 0 || semctl(sem_id, 0, SETALL, (union semun){ .array = vals }) != 0)
		subject_fail("semaphores: %s", strerror(errno));

	msg_id = msgget(KEY_MSG, IPC_CREAT | IPC_EXCL | 0660);
	if (msg_id < 0)
		subject_fail("msgget: %s", strerror(errno));
	struct msqid_ds ds;
	if (msgctl(msg_id, IPC_STAT, &ds) != 0)
		subject_fail("msgctl: %s", strerror(errno));
	ds.msg_qbytes = with_c ? 8000 : ds.msg_qbytes;
	qbytes = ds.msg_qbytes;
	if (msgctl(msg_id, IPC_SET, &ds) != 0)
		subject_fail("msgctl(IPC_SET): %s", strerror(errno));
	for (size_t i = 0; i < sizeof(MSGS) / sizeof(MSGS[0]); i++) {
		struct msg m = { .mtype = MSGS[i].type };
		memcpy(m.text, MSGS[i].text, MSGS[i].len);
		if (msgsnd(msg_id, &m, MSGS[i].len, IPC_NOWAIT) != 0)
			subject_fail("msgsnd: %s", strerror(errno));
	}
}

static void check(void)
{
	const char *why = check_names();
	if (why)
		subject_fail("%s", why);
	if (subject_read_long("/proc/sys/kernel/msgmnb") != 32000)
		subject_fail("msgmnb is %ld", subject_read_long("/proc/sys/kernel/msgmnb"));

	struct shmid_ds ds;
	if (shmctl(shm_a, IPC_STAT, &ds) != 0 || ds.shm_segsz != A_SIZE || (ds.shm_perm.mode & 0777) != 0640)
		subject_fail("segment A: %s", strerror(errno));
	if (ds.shm_nattch != 3)
		subject_fail("segment A has %lu attachments, want 3", (unsigned long)ds.shm_nattch);
	char perms[5];
	if (subject_vma_perms(a_rw, perms) != 0 || strncmp(perms, "rw-s", 4) != 0)
		subject_fail("A's read-write attachment is %s", perms);
	if (subject_vma_perms(a_ro, perms) != 0 || strncmp(perms, "r--s", 4) != 0)
		subject_fail("A's read-only attachment is %s", perms);
	unsigned char want[PAGE];
	subject_fill(want, PAGE, 0xa1);
	if (memcmp(a_rw, want, PAGE) != 0 || memcmp(a_ro, want, PAGE) != 0)
		subject_fail("segment A's first page changed");
	for (int i = 0; i < PAGE; i++)
		if (a_ro[PAGE + i] != 0)
			subject_fail("segment A's hole is not zero");
	if (subject_hash(a_ro + PAGE * 2, A_SIZE - PAGE * 2) != a_hash)
		subject_fail("segment A's tail changed");

	if (shmget(KEY_B, 0, 0) != shm_b)
		subject_fail("segment B is not found by its key");
	unsigned char *b = shmat(shm_b, NULL, SHM_RDONLY);
	unsigned char wb[B_SIZE];
	subject_fill(wb, B_SIZE, 0xb0);
	if (b == (void *)-1 || memcmp(b, wb, B_SIZE) != 0)
		subject_fail("segment B's contents changed");
	shmdt(b);

	if (with_c) {
		if (shmctl(shm_c, IPC_STAT, &ds) != 0 || !(ds.shm_perm.mode & SHM_DEST))
			subject_fail("segment C is not marked removed");
		for (int i = 0; i < PAGE; i++)
			if (c_at[i] != 0xcc)
				subject_fail("segment C's contents changed");
		shmdt(c_at);
		if (shmctl(shm_c, IPC_STAT, &ds) == 0)
			subject_fail("segment C outlived its last detach");
	}

	unsigned short vals[3];
	if (semctl(sem_id, 0, GETALL, (union semun){ .array = vals }) != 0 || vals[0] != 1 || vals[1] != 7 || vals[2] != 42)
		subject_fail("semaphores are not 1 7 42");
	if (semget(KEY_SEM, 0, 0) != sem_id)
		subject_fail("semaphore set is not found by its key");

	struct msqid_ds mq;
	if (msgctl(msg_id, IPC_STAT, &mq) != 0 || mq.msg_qbytes != qbytes || mq.msg_qnum != 3)
		subject_fail("message queue: qbytes %lu qnum %lu", (unsigned long)mq.msg_qbytes, (unsigned long)mq.msg_qnum);
	if (msgget(KEY_MSG, 0) != msg_id)
		subject_fail("message queue is not found by its key");
	for (size_t i = 0; i < sizeof(MSGS) / sizeof(MSGS[0]); i++) {
		struct msg m;
		ssize_t n = msgrcv(msg_id, &m, sizeof(m.text), 0, IPC_NOWAIT);
		if (n != (ssize_t)MSGS[i].len || m.mtype != MSGS[i].type || memcmp(m.text, MSGS[i].text, MSGS[i].len) != 0)
			subject_fail("message %zu differs", i);
	}
}

/* --host-ns 1: one segment attached in the caller's own ipc namespace, removed at once (nothing outlives the task). */
static void host_ns_segment(void)
{
	int id = shmget(IPC_PRIVATE, PAGE, 0600);
	unsigned char *p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
	if (p == (void *)-1)
		subject_fail("host segment: %s", strerror(errno));
	shmctl(id, IPC_RMID, NULL);
	p[0] = 1;
	subject_ready();
	subject_wait_term();
	subject_pass();
}

/*
 * --host-ns 2: a segment of the caller's own ipc namespace, kept (not
 * removed), with a pattern in it: after restore the task is attached to
 * that very segment again (its only attachment) and reads the pattern.
 */
static void host_ns_kept(void)
{
	int id = shmget(IPC_PRIVATE, PAGE, 0600);
	unsigned char *p = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
	if (p == (void *)-1)
		subject_fail("host segment: %s", strerror(errno));
	for (int i = 0; i < PAGE; i++)
		p[i] = (unsigned char)(i * 7 + 3);
	subject_ready();
	subject_wait_term();
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) != 0)
		subject_fail("host segment %d is gone: %s", id, strerror(errno));
	if (ds.shm_nattch != 1)
		subject_fail("host segment %d: %lu attachments, expected 1", id, (unsigned long)ds.shm_nattch);
	for (int i = 0; i < PAGE; i++)
		if (p[i] != (unsigned char)(i * 7 + 3))
			subject_fail("host segment byte %d differs", i);
	shmctl(id, IPC_RMID, NULL);
	subject_pass();
}

/* --nested-uts 1: a child in yet another uts namespace. */
static void nested_uts_child(void)
{
	int p[2];
	char c;
	if (pipe(p) != 0)
		subject_fail("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWUTS) != 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (pid < 0 || read(p[0], &c, 1) != 1)
		subject_fail("nested child did not start");
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	with_c = subject_opt_long("criu-shape", 0) == 0;
	if (subject_opt_long("host-ns", 0) == 1)
		host_ns_segment();
	if (subject_opt_long("host-ns", 0) == 2)
		host_ns_kept();
	setup();
	if (subject_opt_long("nested-uts", 0))
		nested_uts_child();
	struct subject_child c = subject_fork_checker(child_check, NULL);
	setup_rest();
	subject_ready();
	subject_wait_term();
	check();
	a_rw[0] = 0;
	subject_child_verdict(c, "child in the namespaces");
	for (int i = 0; i < 200 && a_rw[0] != 0x7c; i++)
		subject_sleep_ms(5);
	if (a_rw[0] != 0x7c)
		subject_fail("the child's write to segment A was not seen");
	subject_pass();
}
