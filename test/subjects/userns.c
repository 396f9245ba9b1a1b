/*
 * userns: a task in a user namespace of its own. The process started is a
 * launcher: it clones the subject with CLONE_NEWUSER (and the other
 * CLONE_NEW* flags --ns asks for, which the kernel then creates owned by
 * the new user namespace), writes its maps from outside as a container
 * runtime does, and waits for it quietly (the harness reads the subject's
 * pid from OUTFILE.ready). Arguments:
 *   --uid-map "0:20000:20000,100000:200000:50000"   extents inside:outside:count
 *   --gid-map ...                                    (default: the uid map)
 *   --deny 1            setgroups denied before the gid map is written
 *   --ns pid,uts,ipc,net,time  more namespaces of the clone (time: unshared
 *                       by the subject, offset by a day, and entered)
 *   --uid N --gid N --groups a:b   the ids the subject takes inside (default 0)
 *   --drop-cap N        capability N dropped from every set but bounding,
 *                       and from bounding (N+1): the sets differ
 *   --child 1           a child that takes uid/gid 1000 and a group of its own
 *                       (needs pid in --ns)
 *   --files 1           also a memfd, a unix socket bound to a path and an
 *                       unlinked file it holds (a ghost), each owned by the
 *                       subject's ids inside: their owners are kept
 * For the refusals: --nested 1 adds a child in a user namespace of its own;
 * --outer-uts 1 has the launcher unshare its uts namespace first, so the
 * subject's is owned by the launcher's user namespace, not its own.
 * Kept across a restore, as the subject sees them: its ids (real, effective,
 * saved, fs), groups, capability sets (effective, permitted, inheritable,
 * bounding), the uid/gid maps and setgroups of its namespace, which user
 * namespace owns each of its other namespaces (its own), the host name of
 * its uts namespace, and a file it created and holds open (owned by an id
 * of the namespace, reopened inside at restore).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_GET_USERNS 0xb701
#define HOST "criu-ts-userns"
#define FILE_TEXT "written inside"

struct ids {
	uid_t r, e, s, fs;
	gid_t gr, ge, gs, gfs;
	int ngroups;
	gid_t groups[32];
	uint32_t eff[2], prm[2], inh[2];
	uint64_t bnd;
	char uid_map[512], gid_map[512], setgroups[16];
};

static struct ids mine;

/* A SysV message queue of our ipc namespace (--ns ipc), owned by us, holding a message. */
static int queue = -1;
static uid_t queue_uid;
struct qmsg { long mtype; char text[16]; };

static void make_queue(void)
{
	queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	struct qmsg m = { 3, "in the queue" };
	struct msqid_ds ds;
	if (queue < 0 || msgsnd(queue, &m, sizeof(m.text), 0) != 0 || msgctl(queue, IPC_STAT, &ds) != 0)
		subject_fail("message queue: %s", strerror(errno));
	queue_uid = ds.msg_perm.uid;
}

static const char *check_queue(void)
{
	static char why[128];
	struct msqid_ds ds;
	struct qmsg m;
	if (msgctl(queue, IPC_STAT, &ds) != 0 || ds.msg_perm.uid != queue_uid)
		snprintf(why, sizeof(why), "queue %d: owner %u, was %u (%s)", queue, ds.msg_perm.uid, queue_uid, strerror(errno));
	else if (msgrcv(queue, &m, sizeof(m.text), 3, IPC_NOWAIT) != (ssize_t)sizeof(m.text) || strcmp(m.text, "in the queue") != 0)
		snprintf(why, sizeof(why), "queue %d: the message is gone", queue);
	else
		return NULL;
	return why;
}

/* Files whose owner (as we see it) must survive: fds and the owners fstat showed. */
static struct { int fd; uid_t uid; gid_t gid; const char *what; } owned[3];
static int nowned;

static void keep_owner(int fd, const char *what)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		subject_fail("%s: %s", what, strerror(errno));
	owned[nowned++] = (typeof(owned[0])){ fd, st.st_uid, st.st_gid, what };
}

static void make_files(void)
{
	keep_owner(memfd_create("userns-memfd", MFD_CLOEXEC), "memfd");
	if (write(owned[0].fd, "m", 1) != 1)
		subject_fail("memfd write: %s", strerror(errno));
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX, .sun_path = "u.sock" };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 1) != 0)
		subject_fail("unix socket u.sock: %s", strerror(errno));
	struct stat st;
	if (stat("u.sock", &st) != 0)
		subject_fail("stat u.sock: %s", strerror(errno));
	owned[nowned++] = (typeof(owned[0])){ s, st.st_uid, st.st_gid, "u.sock" };
	int g = open("ghost.txt", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (g < 0 || write(g, "ghost", 5) != 5 || unlink("ghost.txt") != 0)
		subject_fail("ghost.txt: %s", strerror(errno));
	keep_owner(g, "ghost");
}

static const char *check_files(void)
{
	static char why[256];
	for (int k = 0; k < nowned; k++) {
		struct stat st;
		int r = k == 1 ? stat("u.sock", &st) : fstat(owned[k].fd, &st);
		if (r != 0 || st.st_uid != owned[k].uid || st.st_gid != owned[k].gid) {
			snprintf(why, sizeof(why), "%s: owner %u:%u, was %u:%u", owned[k].what, r ? 0 : st.st_uid, r ? 0 : st.st_gid, owned[k].uid, owned[k].gid);
			return why;
		}
	}
	return NULL;
}
static int nsflags;
static int file_fd = -1;

static void read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		subject_fail("open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		subject_fail("read %s: %s", path, strerror(errno));
	buf[n] = 0;
}

static void record(struct ids *i)
{
	memset(i, 0, sizeof(*i));
	getresuid(&i->r, &i->e, &i->s);
	getresgid(&i->gr, &i->ge, &i->gs);
	i->fs = (uid_t)setfsuid((uid_t)-1);
	i->gfs = (gid_t)setfsgid((gid_t)-1);
	i->ngroups = getgroups(32, i->groups);
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		subject_fail("capget: %s", strerror(errno));
	for (int k = 0; k < 2; k++) {
		i->eff[k] = d[k].effective;
		i->prm[k] = d[k].permitted;
		i->inh[k] = d[k].inheritable;
	}
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_READ, cap) == 1)
			i->bnd |= 1ULL << cap;
	read_text("/proc/self/uid_map", i->uid_map, sizeof(i->uid_map));
	read_text("/proc/self/gid_map", i->gid_map, sizeof(i->gid_map));
	read_text("/proc/self/setgroups", i->setgroups, sizeof(i->setgroups));
}

static const char *compare(const struct ids *a, const struct ids *b)
{
	static char why[1024];
	if (a->r != b->r || a->e != b->e || a->s != b->s || a->fs != b->fs)
		snprintf(why, sizeof(why), "uids %u/%u/%u/%u, were %u/%u/%u/%u", b->r, b->e, b->s, b->fs, a->r, a->e, a->s, a->fs);
	else if (a->gr != b->gr || a->ge != b->ge || a->gs != b->gs || a->gfs != b->gfs)
		snprintf(why, sizeof(why), "gids %u/%u/%u/%u, were %u/%u/%u/%u", b->gr, b->ge, b->gs, b->gfs, a->gr, a->ge, a->gs, a->gfs);
	else if (a->ngroups != b->ngroups || memcmp(a->groups, b->groups, sizeof(gid_t) * (size_t)(a->ngroups > 0 ? a->ngroups : 0)) != 0)
		snprintf(why, sizeof(why), "%d groups (first %u), were %d (first %u)", b->ngroups, b->groups[0], a->ngroups, a->groups[0]);
	else if (memcmp(a->eff, b->eff, 8) || memcmp(a->prm, b->prm, 8) || memcmp(a->inh, b->inh, 8))
		snprintf(why, sizeof(why), "caps eff %x:%x prm %x:%x inh %x:%x, were %x:%x %x:%x %x:%x",
			 b->eff[1], b->eff[0], b->prm[1], b->prm[0], b->inh[1], b->inh[0],
			 a->eff[1], a->eff[0], a->prm[1], a->prm[0], a->inh[1], a->inh[0]);
	else if (a->bnd != b->bnd)
		snprintf(why, sizeof(why), "bounding set %llx, was %llx", (unsigned long long)b->bnd, (unsigned long long)a->bnd);
	else if (strcmp(a->uid_map, b->uid_map) != 0)
		snprintf(why, sizeof(why), "uid_map [%s], was [%s]", b->uid_map, a->uid_map);
	else if (strcmp(a->gid_map, b->gid_map) != 0)
		snprintf(why, sizeof(why), "gid_map [%s], was [%s]", b->gid_map, a->gid_map);
	else if (strcmp(a->setgroups, b->setgroups) != 0)
		snprintf(why, sizeof(why), "setgroups %s, was %s", b->setgroups, a->setgroups);
	else
		return NULL;
	return why;
}

/* NULL when every namespace of ours asked for is owned by our user namespace. */
static const char *owners(void)
{
	static char why[256];
	static const struct { int flag; const char *name; } NS[] = {
		{ CLONE_NEWPID, "pid" }, { CLONE_NEWUTS, "uts" }, { CLONE_NEWIPC, "ipc" }, { CLONE_NEWNET, "net" },
		{ CLONE_NEWTIME, "time" },
	};
	struct stat user;
	if (stat("/proc/self/ns/user", &user) != 0)
		return "stat /proc/self/ns/user";
	for (size_t k = 0; k < sizeof(NS) / sizeof(NS[0]); k++) {
		if (!(nsflags & NS[k].flag))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/ns/%s", NS[k].name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		int owner = fd < 0 ? -1 : ioctl(fd, NS_GET_USERNS);
		struct stat st;
		int ok = owner >= 0 && fstat(owner, &st) == 0 && st.st_ino == user.st_ino;
		if (fd >= 0)
			close(fd);
		if (owner >= 0)
			close(owner);
		if (!ok) {
			snprintf(path, sizeof(path), "%s namespace not owned by our user namespace", NS[k].name);
			strcpy(why, path);
			return why;
		}
	}
	return NULL;
}

/* The child's ids before the checkpoint. */
static struct ids child_before;

/* A child with ids of its own (1000, and a group 2000 unless setgroups is denied). */
static const char *child_setup(void *arg)
{
	gid_t g[2] = { 1000, 2000 };
	if (strcmp(mine.setgroups, "deny\n") != 0 && setgroups(2, g) != 0)
		return "setgroups(1000, 2000)";
	if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0)
		return "setresgid/setresuid(1000)";
	prctl(PR_SET_DUMPABLE, 1);
	record(&child_before);
	return NULL;
}

/* NULL when its ids survived. */
static const char *child_check(void *arg)
{
	static struct ids now;
	record(&now);
	return compare(&child_before, &now);
}

/* "a:b:c,d:e:f" -> "a b c\nd e f\n" */
static void map_text(const char *spec, char *out, size_t size)
{
	size_t n = 0;
	for (const char *p = spec; *p && n + 2 < size; p++)
		out[n++] = *p == ':' ? ' ' : *p == ',' ? '\n' : *p;
	out[n++] = '\n';
	out[n] = 0;
}

static void write_proc(pid_t pid, const char *file, const char *text)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		subject_fail("write %s [%s]: %s", path, text, strerror(errno));
	close(fd);
}

static int parse_ns(const char *list)
{
	int f = 0;
	if (strstr(list, "pid"))
		f |= CLONE_NEWPID;
	if (strstr(list, "uts"))
		f |= CLONE_NEWUTS;
	if (strstr(list, "ipc"))
		f |= CLONE_NEWIPC;
	if (strstr(list, "net"))
		f |= CLONE_NEWNET;
	if (strstr(list, "time"))
		f |= CLONE_NEWTIME;
	return f;
}

/* Clone the subject into its namespaces, write its maps, and wait for it. Returns in the subject. */
static void launch(void)
{
	const char *uid_map = subject_opt("uid-map", "0:20000:20000");
	const char *gid_map = subject_opt("gid-map", uid_map);
	char umap[256], gmap[256];
	map_text(uid_map, umap, sizeof(umap));
	map_text(gid_map, gmap, sizeof(gmap));
	/* The subject writes its verdict here as whatever id it has inside. */
	if (chmod(".", 0777) != 0)
		subject_fail("chmod the work dir: %s", strerror(errno));
	if (subject_opt_long("outer-uts", 0) && unshare(CLONE_NEWUTS) != 0)
		subject_fail("unshare(CLONE_NEWUTS): %s", strerror(errno));
	int go[2];
	if (pipe2(go, O_CLOEXEC) != 0)
		subject_fail("pipe: %s", strerror(errno));
	/* CLONE_NEWTIME is no clone() flag (its bit is the exit signal's): the subject unshares it. */
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | (nsflags & ~CLONE_NEWTIME) | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0)
		subject_fail("clone(CLONE_NEWUSER|%#x): %s", nsflags, strerror(errno));
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		close(go[0]);
		return;
	}
	close(go[0]);
	if (subject_opt_long("deny", 0))
		write_proc(pid, "setgroups", "deny");
	write_proc(pid, "uid_map", umap);
	write_proc(pid, "gid_map", gmap);
	if (write(go[1], "g", 1) != 1)
		subject_fail("wake the subject: %s", strerror(errno));
	close(go[1]);
	/* Ours to wait for until a dump kills it; the restored subject is not our child. */
	signal(SIGTERM, SIG_IGN);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

static void parse_groups(const char *spec, gid_t *out, int *n)
{
	*n = 0;
	for (const char *p = spec; *p && *n < 32;) {
		out[(*n)++] = (gid_t)strtoul(p, (char **)&p, 10);
		if (*p == ':')
			p++;
	}
}

static void take_ids(uid_t uid, gid_t gid, const char *groups)
{
	gid_t g[32];
	int n = 0;
	if (groups != NULL) {
		parse_groups(groups, g, &n);
		if (setgroups((size_t)n, g) != 0)
			subject_fail("setgroups: %s", strerror(errno));
	}
	if (setresgid(gid, gid, gid) != 0)
		subject_fail("setresgid(%u): %s", gid, strerror(errno));
	if (setresuid(uid, uid, uid) != 0)
		subject_fail("setresuid(%u): %s", uid, strerror(errno));
	/* The id change cleared it; as zdtm's and runtimes' inits, so that our /proc files are ours (CRIU's checks open them). */
	prctl(PR_SET_DUMPABLE, 1);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	nsflags = parse_ns(subject_opt("ns", ""));
	launch();

	if (nsflags & CLONE_NEWUTS) {
		if (sethostname(HOST, strlen(HOST)) != 0)
			subject_fail("sethostname: %s", strerror(errno));
	}
	if (nsflags & CLONE_NEWTIME) {
		/* A time namespace owned by ours, its monotonic clock a day ahead, entered before anything else. */
		if (unshare(CLONE_NEWTIME) != 0)
			subject_fail("unshare(CLONE_NEWTIME): %s", strerror(errno));
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		const char *line = "monotonic 86400 0\n";
		if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line))
			subject_fail("timens_offsets: %s", strerror(errno));
		close(fd);
		fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWTIME) != 0)
			subject_fail("setns(time_for_children): %s", strerror(errno));
		close(fd);
	}
	int64_t mono_before = subject_now_ns();
	/* A file created inside (owned by ids of the namespace), held open. */
	file_fd = open("inside.txt", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (file_fd < 0 || write(file_fd, FILE_TEXT, strlen(FILE_TEXT)) != (ssize_t)strlen(FILE_TEXT))
		subject_fail("inside.txt: %s", strerror(errno));

	struct subject_child child = { .pid = -1 };
	if (subject_opt_long("child", 0)) {
		read_text("/proc/self/setgroups", mine.setgroups, sizeof(mine.setgroups));
		child = subject_fork_prepared("the child with ids of its own", child_setup, child_check, NULL);
	}

	uid_t uid = (uid_t)subject_opt_long("uid", 0);
	gid_t gid = (gid_t)subject_opt_long("gid", 0);
	const char *groups = subject_opt("groups", NULL);
	long drop = subject_opt_long("drop-cap", -1);
	if (drop >= 0) {
		if (prctl(PR_CAPBSET_DROP, drop + 1) != 0)
			subject_fail("drop cap %ld from bounding: %s", drop + 1, strerror(errno));
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2];
		syscall(SYS_capget, &h, d);
		d[drop / 32].effective &= ~(1u << (drop % 32));
		d[drop / 32].permitted &= ~(1u << (drop % 32));
		d[drop / 32].inheritable |= 1u << 5; /* CAP_KILL inheritable: a set that differs */
		if (syscall(SYS_capset, &h, d) != 0)
			subject_fail("capset: %s", strerror(errno));
	}
	/* Ids of the namespace (the clone kept the launcher's, which have no mapping), as a runtime does. */
	take_ids(uid, gid, groups);
	record(&mine);
	/* Made with our ids inside, so their owners are ids of the namespace (not 0 when --uid is not). */
	if (subject_opt_long("files", 0))
		make_files();
	if (nsflags & CLONE_NEWIPC)
		make_queue();
	const char *why = owners();
	if (why)
		subject_fail("before: %s", why);

	if (subject_opt_long("nested", 0)) {
		pid_t n = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
		if (n < 0)
			subject_fail("clone(CLONE_NEWUSER): %s", strerror(errno));
		if (n == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			pause();
			_exit(0);
		}
		usleep(50000);
	}

	subject_ready();
	subject_wait_term();

	struct ids now;
	record(&now);
	why = compare(&mine, &now);
	if (why)
		subject_fail("%s", why);
	why = owners();
	if (why)
		subject_fail("%s", why);
	/* Our monotonic clock went on from where it was: no jump back to the host's (a day behind). */
	int64_t mono_now = subject_now_ns();
	if (mono_now < mono_before || mono_now - mono_before > 600LL * 1000000000LL)
		subject_fail("CLOCK_MONOTONIC went from %lld to %lld", (long long)mono_before, (long long)mono_now);
	if (nsflags & CLONE_NEWUTS) {
		char name[64] = "";
		gethostname(name, sizeof(name));
		if (strcmp(name, HOST) != 0)
			subject_fail("host name %s, wanted %s", name, HOST);
	}
	why = check_files();
	if (why == NULL && queue >= 0)
		why = check_queue();
	if (why)
		subject_fail("%s", why);
	char buf[64] = "";
	if (pread(file_fd, buf, sizeof(buf) - 1, 0) != (ssize_t)strlen(FILE_TEXT) || strcmp(buf, FILE_TEXT) != 0)
		subject_fail("inside.txt reads [%s]", buf);
	if (child.pid > 0)
		subject_child_verdict(child, "child");
	subject_pass();
}
