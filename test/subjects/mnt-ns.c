/*
 * A mount namespace of its own under a private root, as a container has.
 * The launcher (run by the harness) copies its own binary to ROOT/init and
 * clones a child into new mount, pid, uts, ipc and net namespaces; the child,
 * pid 1 inside, builds the tree and pivots into it:
 *   /        ROOT bound onto itself (recursively)
 *   /proc    proc of the new pid namespace (nosuid,nodev,noexec)
 *   /t       tmpfs (size=1m,mode=750): a file (contents, mode 0640, owner
 *            1:2), a hard link to it, a directory with a file
 *   /t2      a bind of /t, made shared first: /t and /t2 are peers
 *   /t3      a bind of /t/dir, slave to /t's peer group
 *   /dev     tmpfs; /dev/pts devpts (newinstance, ptmxmode=666)
 *   /ro      a bind of ROOT/data/sub (the root's filesystem), read-only
 *   /mq      mqueue of the new ipc namespace
 * then execs /init --stage 2, the subject, which keeps an fd on /ro/file
 * and /t/file, tells the launcher (a pipe, then closed) it is ready (the
 * launcher writes OUTFILE.ready with the subject's pid in our namespace)
 * and waits. After SIGTERM it checks that mountinfo shows the same tree
 * (mountpoints, roots, options, types, sources and the shape of the peer
 * groups; not ids, devices or the order of the mounts), the files with their contents, modes and
 * links, and that its fds still read the same files.
 * With --nested, the subject first forks a child that unshares a mount
 * namespace of its own (a copy: its /t stays a peer of the subject's /t
 * across the two namespaces, its /t3 a slave of that group), makes its
 * /t2 private, mounts a tmpfs at /n with a file, shared, and a slave bind
 * of it at /n2; after SIGTERM the child checks its own tree, files and
 * cross-namespace peers, and the subject that none of it shows in its own.
 * The child also keeps an fd (100) on /n/watched; the subject, in its own
 * namespace, where /n is not mounted, opens that file through
 * /proc/CHILD/fd/100 and puts an inotify watch on it (zdtm's inotify01):
 * after SIGTERM a write through its fd shows as IN_MODIFY on that watch.
 * --root ROOT (absolute; the harness's work dir must be ROOT/w).
 * --ghosts 1: the subject also holds files whose names are gone, in its
 * tree: an fd at an offset on an unlinked file of the root's filesystem
 * (/data/g1), a shared mapping of an unlinked tmpfs file (/t/g2), a
 * removed cwd (/data/gone) and an fd on a file of the read-only /ro
 * removed through its writable name (/data/sub/gro); after SIGTERM they
 * must read the same, still be unlinked under their own names, /ro be
 * read-only again, and no name may be left behind.
 * --link-remap 1 (with --nested): before its unshare the nested child
 * makes /t/lr and a second link /t/lr-keep and opens /t/lr; after it,
 * unlinks /t/lr through its own copy of /t. Its fd is on a file still
 * linked elsewhere, through a mount of the subject's namespace: the dump
 * (--link-remap) must link it there, not in the child's namespace. It
 * also holds a ghost through two mounts (check_ghost_two_mounts).
 * --userns 1: the child is also in a user namespace of its own, with
 * zdtm's uns maps (written by the launcher, which first gives ROOT, its
 * init, ROOT/data/sub, ROOT/w and the harness's files to the mapped root,
 * as a runtime's rootfs is); it takes ids 0 inside, makes /data/sub/owned
 * owned by 1000:1000 inside and keeps an fd on it. After the restore it
 * checks its ids, its maps, and the owner of that file seen through both
 * its path and its fd.
 * --ext DIR (a directory of a shared mount of ours): /e1 a private bind of
 * DIR, /e2 a bind of /e1 (listed after it: the dump names /e2 external),
 * /e3 a bind of DIR that stays a slave of DIR's peer group (the child's
 * copy of our tree is made a slave, not private, and its new / private).
 * --ext-auto 1 (with --ext): also /e4, a clone of DIR taken in our
 * namespace before the clone into the new ones (open_tree) and attached
 * there: a peer of DIR's group (shared with our namespace), and /fb, a
 * private bind of the file DIR/hello (as zdtm's mnt_ext_auto,
 * mnt_ext_master and mnt_ext_file_bind_auto have them).
 * --overmount 1: /o1 a tmpfs with a file under a second tmpfs stacked on
 * it, /o2/in a tmpfs with a file under a tmpfs on /o2 (made before the
 * subject runs); after SIGTERM, the top files read as before and, once
 * the mounts over them are unmounted, the hidden ones too. Also /gd and
 * /gf: binds of a directory and of a file of the root's filesystem,
 * removed after (the binds stay, on their removed sources); after
 * SIGTERM /gf reads as before and the sources are still gone.
 * --overmount-sock 1: in /os (a directory of the root's filesystem) a
 * listener bound to "/os/listen" with a connection accepted (its client
 * connected to it) and one still waiting in its queue, a datagram socket
 * bound to the relative name "os/dgram" (from /) with a message queued and
 * a client connected to it; then a tmpfs is mounted on /os, covering every
 * name. After SIGTERM the names are the sockets' own, the connections and
 * the message came back, the tmpfs over /os can be unmounted (no socket
 * holds it) and the names reach the sockets again by path.
 * --overmount-sock 2: a listener bound to "/t3/sub/covered" (/t3 is a
 * bind), then a tmpfs mounted on /t3/sub, for the refusal at dump (an absolute name
 * covered on a mount other than the root cannot be bound again under the
 * cover).
 * --nsfs 1: /nsf is a bind mount of a net namespace no task is in (as
 * `ip netns add` makes one: the namespace of a child that then exited),
 * for the refusal at dump.
 * --pty 1: /dev/ptmx is a symlink to pts/ptmx (as runc makes it), and the
 * subject opens a pty pair of its devpts, takes the slave as controlling
 * terminal, sets a window size, gives the slave an owner and leaves a line
 * typed into the master unread; after SIGTERM the pair has its index, the
 * line, size, owner and terminal, and bytes still flow both ways.
 */
#define _GNU_SOURCE
#include "subject.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#endif

/* --ext-auto: a clone of DIR made in our namespace, attached at /e4 in the new one. */
static int ext_peer = -1;

#define FILE_TEXT "contents of a tmpfs file\n"
#define RO_TEXT "a file of the root's filesystem\n"
#define OWNED_TEXT "owned by 1000 inside\n"

/* zdtm's uns maps (test/zdtm/lib/ns.c): host root not mapped. */
#define UID_MAP "0 20000 20000\n100000 200000 50000\n"
#define GID_MAP "0 400000 50000\n50000 500000 100000\n"
#define HOST_ROOT_UID 20000
#define HOST_ROOT_GID 400000

static void must(int ok, const char *what)
{
	if (!ok)
		subject_fail("%s: %s", what, strerror(errno));
}

static void copy_self(const char *to)
{
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	must(in >= 0 && out >= 0, "open the copy of the subject");
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		must(write(out, buf, (size_t)n) == n, "copy the subject");
	close(in);
	close(out);
}

static void same_file(int fd, const char *text, const char *what);

static void write_proc(pid_t pid, const char *name, const char *text)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	must(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), path);
	close(fd);
}

/* What the subject writes inside its root: the mapped root's, as a runtime's rootfs is. */
static void give_to_mapped_root(const char *root, const char *out)
{
	const char *parts[] = { "", "/init", "/data", "/data/sub", "/w" };
	char path[4200];
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", root, parts[i]);
		must(chown(path, HOST_ROOT_UID, HOST_ROOT_GID) == 0, path);
	}
	snprintf(path, sizeof(path), "%.*s.log", (int)(strlen(out) > 4 ? strlen(out) - 4 : 0), out);
	must(chown(path, HOST_ROOT_UID, HOST_ROOT_GID) == 0, path);
}

static void check_ids(int owned)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	must(getresuid(&r, &e, &s) == 0 && getresgid(&gr, &ge, &gs) == 0, "getresuid");
	if (r != 0 || e != 0 || s != 0 || gr != 0 || ge != 0 || gs != 0)
		subject_fail("ids inside: uid %d/%d/%d gid %d/%d/%d", r, e, s, gr, ge, gs);
	char buf[256] = "";
	int fd = open("/proc/self/uid_map", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	close(fd);
	char want[256], *p = want;
	/* /proc shows each extent as three right-aligned columns. */
	unsigned a, b, c;
	const char *m = UID_MAP;
	int k;
	while (sscanf(m, "%u %u %u\n%n", &a, &b, &c, &k) == 3) {
		p += sprintf(p, "%10u %10u %10u\n", a, b, c);
		m += k;
	}
	if (n < 0 || strcmp(buf, want) != 0)
		subject_fail("uid_map reads \"%s\"", buf);
	struct stat a1, a2;
	if (stat("/data/sub/owned", &a1) != 0 || fstat(owned, &a2) != 0)
		subject_fail("stat /data/sub/owned: %s", strerror(errno));
	if (a1.st_uid != 1000 || a1.st_gid != 1000 || a2.st_ino != a1.st_ino || a2.st_uid != 1000 || a2.st_gid != 1000)
		subject_fail("/data/sub/owned: owner %d:%d, its fd's %d:%d", a1.st_uid, a1.st_gid, a2.st_uid, a2.st_gid);
	same_file(owned, OWNED_TEXT, "the fd on /data/sub/owned");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	must(fd >= 0, path);
	must(write(fd, text, strlen(text)) == (ssize_t)strlen(text), path);
	close(fd);
}

#define UNDER_TEXT "a file of a tmpfs overmounted on its own mountpoint\n"
#define OVER_TEXT "a file of the tmpfs over it\n"
#define DEEP_TEXT "a file of a tmpfs under a mount on a directory above it\n"

/* /o1: a tmpfs with a file, another tmpfs stacked on it; /o2/in: a tmpfs with a file, hidden by a tmpfs on /o2. */
static void make_overmounts(void)
{
	must(mount("under", "/o1", "tmpfs", 0, "size=1m") == 0, "mount /o1");
	write_file("/o1/file", UNDER_TEXT, 0644);
	must(mount("over", "/o1", "tmpfs", 0, "size=1m") == 0, "mount /o1 again");
	write_file("/o1/file", OVER_TEXT, 0600);
	must(mkdir("/o2/in", 0755) == 0 || errno == EEXIST, "mkdir /o2/in");
	must(mount("deep", "/o2/in", "tmpfs", 0, "size=1m") == 0, "mount /o2/in");
	write_file("/o2/in/file", DEEP_TEXT, 0640);
	must(mount("above", "/o2", "tmpfs", MS_NOSUID, "size=1m") == 0, "mount /o2");
}

/* /gd a bind of a directory, /gf a bind of a file, both removed after (mountinfo: root ".../gone//deleted"). */
static void make_deleted_binds(void)
{
	must(mkdir("/data/gone", 0700) == 0, "mkdir /data/gone");
	write_file("/data/gone/in", DEEP_TEXT, 0644);
	must(mkdir("/gd", 0755) == 0 || errno == EEXIST, "mkdir /gd");
	must(mount("/data/gone", "/gd", NULL, MS_BIND, NULL) == 0, "bind /gd");
	write_file("/data/gonefile", "", 0600);
	write_file("/gf", "", 0644);
	must(mount("/data/gonefile", "/gf", NULL, MS_BIND, NULL) == 0, "bind /gf");
	must(unlink("/data/gone/in") == 0 && rmdir("/data/gone") == 0 && unlink("/data/gonefile") == 0, "remove the sources of /gd and /gf");
}

static void read_text(const char *path, const char *text)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		subject_fail("%s: %s", path, strerror(errno));
	same_file(fd, text, path);
	close(fd);
}

/* The files of the hidden tmpfs came back: seen once the mounts over them are gone (the test is over). */
static void check_overmounts(void)
{
	struct stat gd, gf;
	if (stat("/gd", &gd) != 0 || stat("/gf", &gf) != 0 || !S_ISDIR(gd.st_mode) || !S_ISREG(gf.st_mode) || gf.st_size != 0)
		subject_fail("/gd or /gf is not the empty directory or file it was");
	if (access("/data/gone", F_OK) == 0 || access("/data/gonefile", F_OK) == 0 || access("/gd/in", F_OK) == 0)
		subject_fail("the removed sources of /gd and /gf are back");
	read_text("/o1/file", OVER_TEXT);
	if (access("/o2/in", F_OK) == 0)
		subject_fail("/o2/in shows through the tmpfs over /o2");
	if (umount2("/o1", 0) != 0 || umount2("/o2", 0) != 0)
		subject_fail("unmount the tmpfs over /o1 and /o2: %s", strerror(errno));
	read_text("/o1/file", UNDER_TEXT);
	read_text("/o2/in/file", DEEP_TEXT);
}

/* Sockets bound under /os, then covered by a tmpfs on /os (--overmount-sock). */
struct os_socks {
	int listener, accepted, client, waiting, dgram, dclient;
};

static struct sockaddr_un unix_addr(const char *name, socklen_t *len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strncpy(a.sun_path, name, sizeof(a.sun_path) - 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
	return a;
}

static int unix_sock(int type, const char *bind_to, const char *connect_to)
{
	socklen_t len;
	int fd = socket(AF_UNIX, type, 0);
	must(fd >= 0, "socket");
	if (bind_to != NULL) {
		struct sockaddr_un a = unix_addr(bind_to, &len);
		must(bind(fd, (struct sockaddr *)&a, len) == 0, "bind under /os");
	}
	if (connect_to != NULL) {
		struct sockaddr_un a = unix_addr(connect_to, &len);
		must(connect(fd, (struct sockaddr *)&a, len) == 0, "connect under /os");
	}
	return fd;
}

static struct os_socks make_overmount_socks(void)
{
	struct os_socks s;
	must(mkdir("/os", 0755) == 0 || errno == EEXIST, "mkdir /os");
	s.listener = unix_sock(SOCK_STREAM, "/os/listen", NULL);
	must(listen(s.listener, 4) == 0, "listen");
	s.client = unix_sock(SOCK_STREAM, NULL, "/os/listen");
	s.accepted = accept(s.listener, NULL, NULL);
	must(s.accepted >= 0, "accept");
	s.waiting = unix_sock(SOCK_STREAM, NULL, "/os/listen");
	must(chdir("/") == 0, "chdir /");
	s.dgram = unix_sock(SOCK_DGRAM, "os/dgram", NULL);
	s.dclient = unix_sock(SOCK_DGRAM, NULL, "os/dgram");
	must(send(s.dclient, "queued", 6, 0) == 6, "send to os/dgram");
	must(mount("os-cover", "/os", "tmpfs", 0, "size=1m") == 0, "mount a tmpfs on /os");
	return s;
}

static void own_name(int fd, const char *name)
{
	struct sockaddr_un a;
	socklen_t len = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &len) != 0 || strcmp(a.sun_path, name) != 0)
		subject_fail("a socket bound to %s reports another name", name);
}

/* Bytes from `a` arrive at `b`. */
static void flows(int a, int b, const char *what)
{
	char buf[16] = { 0 };
	if (write(a, "ping", 4) != 4 || read(b, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4) != 0)
		subject_fail("%s: no bytes flow", what);
}

static void check_overmount_socks(struct os_socks s)
{
	char buf[16] = { 0 };
	own_name(s.listener, "/os/listen");
	own_name(s.dgram, "os/dgram");
	flows(s.client, s.accepted, "the accepted connection");
	flows(s.accepted, s.client, "the accepted connection, back");
	int late = accept(s.listener, NULL, NULL);
	if (late < 0)
		subject_fail("the connection waiting under the cover is gone: %s", strerror(errno));
	flows(s.waiting, late, "the connection accepted after restore");
	if (recv(s.dgram, buf, sizeof(buf), MSG_DONTWAIT) != 6 || memcmp(buf, "queued", 6) != 0)
		subject_fail("the message queued on os/dgram is lost");
	flows(s.dclient, s.dgram, "the datagram client");
	if (access("/os/listen", F_OK) == 0)
		subject_fail("/os/listen shows through the tmpfs over /os");
	if (umount2("/os", 0) != 0)
		subject_fail("unmount the tmpfs over /os: %s", strerror(errno));
	struct stat st;
	if (stat("/os/listen", &st) != 0 || !S_ISSOCK(st.st_mode) || stat("/os/dgram", &st) != 0 || !S_ISSOCK(st.st_mode))
		subject_fail("the sockets' names under /os are not sockets once the tmpfs is gone");
	int again = unix_sock(SOCK_STREAM, NULL, "/os/listen");
	int acc = accept(s.listener, NULL, NULL);
	if (acc < 0)
		subject_fail("a connection by name to /os/listen is not accepted");
	flows(again, acc, "a connection made by name after restore");
	int d = unix_sock(SOCK_DGRAM, NULL, "/os/dgram");
	flows(d, s.dgram, "a datagram sent by name after restore");
	unlink("/os/listen");
	unlink("/os/dgram");
}

/* `at`: a bind mount of the net namespace of a child that unshared one and exited: no task is in it. */
static void bind_lone_netns(const char *at)
{
	int p[2];
	char c, ns[64];
	must(pipe(p) == 0, "pipe");
	pid_t child = fork();
	must(child >= 0, "fork");
	if (child == 0) {
		c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	must(read(p[0], &c, 1) == 1 && c == 'y', "the child's net namespace");
	write_file(at, "", 0600);
	snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)child);
	must(mount(ns, at, NULL, MS_BIND, NULL) == 0, "bind the child's net namespace");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(p[0]);
	close(p[1]);
}

/* The child: build the tree under root, pivot into it, exec the subject. */
static void build(const char *root, const char *out, int ready_fd, int maps_fd)
{
	char path[4096];
	if (maps_fd >= 0) {
		char c;
		must(read(maps_fd, &c, 1) == 1, "wait for the maps");
		close(maps_fd);
		must(setresgid(0, 0, 0) == 0 && setresuid(0, 0, 0) == 0, "take ids 0 inside");
	}
	const char *ext = subject_opt("ext", NULL);
	/* With --ext, the copy stays a slave of our mounts: /e3 receives what is mounted under EXT outside. */
	must(mount(NULL, "/", NULL, MS_REC | (ext != NULL ? MS_SLAVE : MS_PRIVATE), NULL) == 0, "make / private");
	must(mount(root, root, NULL, MS_BIND | MS_REC, NULL) == 0, "bind the root");
	must(chdir(root) == 0, "chdir root");
	if (ext != NULL) {
		must(mount(ext, "e1", NULL, MS_BIND, NULL) == 0, "bind e1");
		must(mount(NULL, "e1", NULL, MS_PRIVATE, NULL) == 0, "make e1 private");
		must(mount("e1", "e2", NULL, MS_BIND, NULL) == 0, "bind e2");
		must(mount(ext, "e3", NULL, MS_BIND, NULL) == 0, "bind e3");
		if (ext_peer >= 0) {
			must(syscall(SYS_move_mount, ext_peer, "", AT_FDCWD, "e4", MOVE_MOUNT_F_EMPTY_PATH) == 0, "attach e4, a peer of EXT's group");
			close(ext_peer);
			must(mount("e1/hello", "fb", NULL, MS_BIND, NULL) == 0, "bind fb");
		}
	}
	/* Before the old root goes: in a user namespace, proc is mounted only where one is fully visible. */
	must(mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0, "mount /proc");
	mkdir("old", 0700);
	must(syscall(SYS_pivot_root, ".", "old") == 0, "pivot_root");
	must(umount2("/old", MNT_DETACH) == 0, "detach the old root");
	rmdir("/old");
	must(chdir("/") == 0, "chdir /");
	if (ext != NULL)
		must(mount(NULL, "/", NULL, MS_PRIVATE, NULL) == 0, "make the new / private");
	must(mount("subj-tmp", "/t", "tmpfs", 0, "size=1m,mode=750") == 0, "mount /t");
	write_file("/t/file", FILE_TEXT, 0640);
	must(chown("/t/file", 1, 2) == 0, "chown /t/file");
	must(link("/t/file", "/t/link") == 0, "link /t/link");
	must(mkdir("/t/dir", 0711) == 0, "mkdir /t/dir");
	write_file("/t/dir/inner", "inner\n", 0600);
	must(mkdir("/t/x", 0700) == 0, "mkdir /t/x");
	must(mount(NULL, "/t", NULL, MS_SHARED, NULL) == 0, "make /t shared");
	must(mount("/t", "/t2", NULL, MS_BIND, NULL) == 0, "bind /t2");
	must(mount("/t/dir", "/t3", NULL, MS_BIND, NULL) == 0, "bind /t3");
	must(mount(NULL, "/t3", NULL, MS_SLAVE, NULL) == 0, "make /t3 a slave");
	must(mount("subj-dev", "/dev", "tmpfs", MS_NOSUID, "mode=755") == 0, "mount /dev");
	must(mkdir("/dev/pts", 0755) == 0, "mkdir /dev/pts");
	must(mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") == 0, "mount /dev/pts");
	must(mount("/data/sub", "/ro", NULL, MS_BIND, NULL) == 0, "bind /ro");
	must(mount(NULL, "/ro", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0, "make /ro read-only");
	must(mount("mqueue", "/mq", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0, "mount /mq");
	const char *overmount = subject_opt("overmount", "0");
	if (strcmp(overmount, "0") != 0) {
		make_overmounts();
		make_deleted_binds();
	}
	if (subject_opt_long("nsfs", 0) == 1)
		bind_lone_netns("/nsf");
	const char *pty = subject_opt("pty", "0");
	if (strcmp(pty, "0") != 0)
		must(symlink("pts/ptmx", "/dev/ptmx") == 0, "symlink /dev/ptmx");
	snprintf(path, sizeof(path), "%d", ready_fd);
	const char *nested = subject_opt("nested", NULL);
	const char *ghosts = subject_opt("ghosts", "0");
	const char *argv2[22] = { "init", "--out", out, "--stage", "2", "--ready-fd", path, "--userns", maps_fd >= 0 ? "1" : "0", "--ghosts", ghosts, "--pty", pty,
				  "--overmount", overmount, "--link-remap", subject_opt("link-remap", "0"),
				  "--overmount-sock", subject_opt("overmount-sock", "0") };
	if (nested != NULL) {
		argv2[19] = "--nested";
		argv2[20] = nested;
	}
	execv("/init", (char *const *)argv2);
	subject_fail("exec /init: %s", strerror(errno));
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The mount tree without ids and devices, one line per mount sorted by
 * mountpoint (the order mountinfo lists mounts is the order they were
 * made, which a restore need not keep); peer groups numbered in order of
 * appearance in that sorted list.
 */
static void tree_shape(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		subject_fail("mountinfo: %s", strerror(errno));
	static char store[64][1024];
	char *lines[64];
	int nlines = 0;
	char line[4096];
	while (fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL, *fields[64];
		int n = 0;
		for (char *tok = strtok_r(line, " \n", &save); tok != NULL && n < 64; tok = strtok_r(NULL, " \n", &save))
			fields[n++] = tok;
		if (n < 10)
			continue;
		char prop[256] = "";
		int i = 6;
		for (; i < n && strcmp(fields[i], "-") != 0; i++)
			if (strchr(fields[i], ':') != NULL)
				snprintf(prop + strlen(prop), sizeof(prop) - strlen(prop), " %s", fields[i]);
		if (i + 3 >= n)
			continue;
		if (nlines == 64)
			subject_fail("mount tree too long");
		snprintf(store[nlines], sizeof(store[nlines]), "%s %s %s%s - %s %s %s", fields[4], fields[3], fields[5], prop,
			 fields[i + 1], fields[i + 2], fields[i + 3]);
		lines[nlines] = store[nlines];
		nlines++;
	}
	fclose(f);
	qsort(lines, (size_t)nlines, sizeof(lines[0]), cmp_lines);
	int groups[64] = { 0 }, ngroups = 0;
	size_t used = 0;
	buf[0] = 0;
	for (int l = 0; l < nlines; l++) {
		/* "shared:N"/"master:N" become the group's number in order of appearance. */
		char out[1200] = "", *p = lines[l];
		char *dash = strstr(p, " - ");
		while (*p != 0) {
			char kind[32];
			int id, k;
			if (p < dash && *p == ' ' && sscanf(p, " %31[a-z]:%d%n", kind, &id, &k) == 2) {
				int g = 0;
				while (g < ngroups && groups[g] != id)
					g++;
				if (g == ngroups && ngroups < 64)
					groups[ngroups++] = id;
				snprintf(out + strlen(out), sizeof(out) - strlen(out), " %s:%d", kind, g);
				p += k;
				continue;
			}
			size_t o = strlen(out);
			if (o + 1 < sizeof(out)) {
				out[o] = *p;
				out[o + 1] = 0;
			}
			p++;
		}
		used += (size_t)snprintf(buf + used, size - used, "%s\n", out);
		if (used >= size)
			subject_fail("mount tree too long");
	}
}

static void same_file(int fd, const char *text, const char *what)
{
	char buf[256] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0 || strcmp(buf, text) != 0)
		subject_fail("%s reads \"%s\"", what, n < 0 ? strerror(errno) : buf);
}

static void check_files(void)
{
	struct stat a, b;
	if (stat("/t/file", &a) != 0 || stat("/t/link", &b) != 0)
		subject_fail("stat /t/file, /t/link: %s", strerror(errno));
	if ((a.st_mode & 07777) != 0640 || a.st_uid != 1 || a.st_gid != 2)
		subject_fail("/t/file: mode %o owner %d:%d", a.st_mode & 07777, a.st_uid, a.st_gid);
	if (a.st_ino != b.st_ino || a.st_nlink != 2)
		subject_fail("/t/link is no longer a hard link of /t/file (nlink %ld)", (long)a.st_nlink);
	if (stat("/t/dir", &b) != 0 || (b.st_mode & 07777) != 0711)
		subject_fail("/t/dir: mode %o", b.st_mode & 07777);
	int fd = open("/t3/inner", O_RDONLY);
	if (fd < 0)
		subject_fail("/t3/inner: %s", strerror(errno));
	same_file(fd, "inner\n", "/t3/inner");
	close(fd);
	if (open("/ro/new", O_WRONLY | O_CREAT, 0600) >= 0 || errno != EROFS)
		subject_fail("/ro is writable");
	/* /t and /t2 are peers: a mount under one shows under the other. */
	struct stat x, y;
	if (mount("again", "/t2/x", "tmpfs", 0, NULL) != 0)
		subject_fail("mount /t2/x: %s", strerror(errno));
	int ok = stat("/t/x", &x) == 0 && stat("/t2/x", &y) == 0 && x.st_dev == y.st_dev && x.st_dev != a.st_dev;
	umount2("/t2/x", MNT_DETACH);
	if (!ok)
		subject_fail("/t and /t2 are not peers");
}

#define NEST_TEXT "a file of the nested namespace's tmpfs\n"

static void nest_fail(const char *what)
{
	subject_log("nested child: %s", what);
	_exit(1);
}

/* The "shared:N" (or "master:N") id of the mount at mountpoint in a mountinfo file; 0 if none. */
static int prop_id(const char *mountinfo, const char *mountpoint, const char *kind)
{
	FILE *f = fopen(mountinfo, "re");
	if (f == NULL)
		return -1;
	char line[4096];
	int id = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char mp[4096];
		if (sscanf(line, "%*d %*d %*s %*s %4095s", mp) != 1 || strcmp(mp, mountpoint) != 0)
			continue;
		char key[40];
		snprintf(key, sizeof(key), " %s:", kind);
		char *at = strstr(line, key);
		char *dash = strstr(line, " - ");
		id = at != NULL && (dash == NULL || at < dash) ? atoi(at + strlen(key)) : 0;
	}
	fclose(f);
	return id;
}

static void check_nested(void)
{
	char buf[256] = "";
	int fd = open("/n2/file", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0 || strcmp(buf, NEST_TEXT) != 0)
		nest_fail("/n2/file does not read the file of /n");
	close(fd);
	int t = prop_id("/proc/self/mountinfo", "/t", "shared");
	if (t <= 0 || t != prop_id("/proc/1/mountinfo", "/t", "shared"))
		nest_fail("its /t is no longer a peer of the subject's /t");
	if (prop_id("/proc/self/mountinfo", "/t3", "master") != t)
		nest_fail("its /t3 is no longer a slave of /t's group");
	if (prop_id("/proc/self/mountinfo", "/t2", "shared") != 0)
		nest_fail("its /t2 is shared again");
	int n = prop_id("/proc/self/mountinfo", "/n", "shared");
	if (n <= 0 || prop_id("/proc/self/mountinfo", "/n2", "master") != n)
		nest_fail("its /n2 is no longer a slave of /n");
}

static int mnt_id_of(int fd)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	int id = -1;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "mnt_id: %d", &id) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return id;
}

/* An fd opened through the subject's /t is still on that mount, not on the nested copy of it. */
static void check_inherited(int inherited)
{
	int own = open("/t/file", O_RDONLY);
	int a = mnt_id_of(inherited), b = mnt_id_of(own);
	close(own);
	if (a <= 0 || b <= 0 || a == b)
		nest_fail("the fd opened before the unshare is on the nested namespace's /t");
}

#define LR_TEXT "linked elsewhere, unlinked here\n"

/*
 * --link-remap: the fd on /t/lr, opened through the subject's /t before the
 * unshare, after /t/lr was unlinked in the nested namespace (its copy of /t)
 * while /t/lr-keep still links the inode: the same inode, one link, the
 * name "/t/lr (deleted)", the subject's mount, and no name of the dump's
 * (link_remap.N) left in /t.
 */
static void check_link_remap(int lr)
{
	struct stat st, keep;
	char fdpath[64], link[4096] = "";
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", lr);
	ssize_t n = readlink(fdpath, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (fstat(lr, &st) != 0 || stat("/t/lr-keep", &keep) != 0 || st.st_ino != keep.st_ino || st.st_dev != keep.st_dev || st.st_nlink != 1)
		nest_fail("the link-remapped fd is not on /t/lr-keep's inode with one link");
	if (strcmp(link, "/t/lr (deleted)") != 0)
		nest_fail("the link-remapped fd does not read /t/lr (deleted)");
	char buf[256] = "";
	if (pread(lr, buf, sizeof(buf) - 1, 0) < 0 || strcmp(buf, LR_TEXT) != 0)
		nest_fail("the link-remapped fd's contents changed");
	check_inherited(lr);
	DIR *d = opendir("/t/dir");
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "gh", 2) == 0)
			nest_fail("a name of the ghost is left in /t/dir");
	if (d != NULL)
		closedir(d);
	d = opendir("/t");
	while (d != NULL && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "link_remap.", 11) == 0 || strcmp(e->d_name, "lr") == 0 || strncmp(e->d_name, "gh", 2) == 0)
			nest_fail("a name the dump or restore made is left in /t");
	if (d != NULL)
		closedir(d);
}

/*
 * --link-remap: a ghost held through two mounts, as zdtm's mntns_link_ghost:
 * gh_outer opened as /t/gh through the subject's /t before the unshare,
 * gh_own as /t3/gh (its second link, /t/dir/gh) through the nested
 * namespace's /t3 (a bind of /t/dir, which does not show /t/gh) after it,
 * then both names unlinked. One inode without a name, each fd on its own
 * mount, reading its own name.
 */
static void check_ghost_two_mounts(int gh_outer, int gh_own)
{
	struct stat a, b;
	if (fstat(gh_outer, &a) != 0 || fstat(gh_own, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev || a.st_nlink != 0)
		nest_fail("the ghost's two fds are not on one unlinked inode");
	if (mnt_id_of(gh_outer) == mnt_id_of(gh_own))
		nest_fail("the ghost's two fds are on one mount");
	int t3 = open("/t3", O_RDONLY | O_DIRECTORY);
	if (t3 < 0 || mnt_id_of(t3) != mnt_id_of(gh_own))
		nest_fail("the ghost's fd opened through /t3 is not on /t3");
	close(t3);
	char fdpath[64], link[4096] = "";
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", gh_own);
	ssize_t n = readlink(fdpath, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (strcmp(link, "/t3/gh (deleted)") != 0)
		nest_fail("the ghost's fd opened through /t3 does not read /t3/gh (deleted)");
	char buf[256] = "";
	if (pread(gh_own, buf, sizeof(buf) - 1, 0) < 0 || strcmp(buf, LR_TEXT) != 0)
		nest_fail("the ghost's contents changed");
}

/* The child in a mount namespace of its own: builds, says ready on ready_fd, checks after SIGTERM. */
static pid_t nested_child(void)
{
	int ready[2];
	must(pipe(ready) == 0, "pipe");
	pid_t pid = fork();
	must(pid >= 0, "fork");
	if (pid > 0) {
		close(ready[1]);
		char c;
		if (read(ready[0], &c, 1) != 1)
			subject_fail("the nested child did not get ready (see the log)");
		close(ready[0]);
		return pid;
	}
	close(ready[0]);
	static char before[16384], after[16384];
	/* Opened through the subject's /t: it keeps that mount (its mnt_id) in the nested namespace. */
	int inherited = open("/t/file", O_RDONLY);
	if (inherited < 0)
		nest_fail("open /t/file");
	int lr = -1, gh_outer = -1, gh_own = -1;
	if (subject_opt_long("link-remap", 0) == 1) {
		write_file("/t/lr", LR_TEXT, 0640);
		if (link("/t/lr", "/t/lr-keep") != 0 || (lr = open("/t/lr", O_RDONLY)) < 0)
			nest_fail("link and open /t/lr");
		write_file("/t/gh", LR_TEXT, 0640);
		if (link("/t/gh", "/t/dir/gh") != 0 || (gh_outer = open("/t/gh", O_RDONLY)) < 0)
			nest_fail("link and open /t/gh");
	}
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/t2", NULL, MS_PRIVATE, NULL) != 0 ||
	    mount("nest-tmp", "/n", "tmpfs", 0, "size=1m,mode=755") != 0)
		nest_fail(strerror(errno));
	write_file("/n/file", NEST_TEXT, 0600);
	if (mount(NULL, "/n", NULL, MS_SHARED, NULL) != 0 || mount("/n", "/n2", NULL, MS_BIND, NULL) != 0 ||
	    mount(NULL, "/n2", NULL, MS_SLAVE, NULL) != 0)
		nest_fail(strerror(errno));
	int nf = open("/n/file", O_RDONLY);
	if (nf < 0)
		nest_fail("open /n/file");
	if (lr >= 0 && (unlink("/t/lr") != 0 || (gh_own = open("/t3/gh", O_RDONLY)) < 0 || unlink("/t3/gh") != 0 || unlink("/t/gh") != 0))
		nest_fail("unlink /t/lr, open /t3/gh, unlink /t3/gh and /t/gh");
	if (lr >= 0)
		check_ghost_two_mounts(gh_outer, gh_own);
	write_file("/n/watched", "", 0600);
	int watched = open("/n/watched", O_RDONLY);
	if (watched < 0 || dup2(watched, 100) != 100)
		nest_fail("open /n/watched at fd 100");
	close(watched);
	check_nested();
	check_inherited(inherited);
	tree_shape(before, sizeof(before));
	if (write(ready[1], "r", 1) != 1)
		nest_fail("tell the subject");
	close(ready[1]);
	subject_wait_term();
	tree_shape(after, sizeof(after));
	if (strcmp(before, after) != 0) {
		subject_log("nested before:\n%s", before);
		subject_log("nested after:\n%s", after);
		nest_fail("its mount tree changed");
	}
	check_nested();
	check_inherited(inherited);
	if (lr >= 0) {
		check_link_remap(lr);
		check_ghost_two_mounts(gh_outer, gh_own);
	}
	char buf[256] = "";
	if (pread(nf, buf, sizeof(buf) - 1, 0) < 0 || strcmp(buf, NEST_TEXT) != 0)
		nest_fail("the fd on /n/file");
	_exit(0);
}

#define G1_BYTES 5000
#define G2_BYTES 8192

#define GRO_TEXT "a ghost on a read-only mount\n"

static int g1 = -1, gro = -1;
static unsigned char *g2;
static unsigned char g1_data[G1_BYTES], g2_data[G2_BYTES];

static void make_ghosts(void)
{
	subject_fill(g1_data, sizeof(g1_data), 31);
	subject_fill(g2_data, sizeof(g2_data), 32);
	g1 = open("/data/g1", O_RDWR | O_CREAT | O_EXCL, 0640);
	int f2 = open("/t/g2", O_RDWR | O_CREAT | O_EXCL, 0600);
	must(g1 >= 0 && f2 >= 0, "create /data/g1, /t/g2");
	must(write(g1, g1_data, sizeof(g1_data)) == G1_BYTES && write(f2, g2_data, sizeof(g2_data)) == G2_BYTES, "fill the ghosts");
	must(lseek(g1, 1234, SEEK_SET) == 1234, "seek /data/g1");
	g2 = mmap(NULL, G2_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, f2, 0);
	must(g2 != MAP_FAILED, "map /t/g2");
	close(f2);
	must(unlink("/data/g1") == 0 && unlink("/t/g2") == 0, "unlink the ghosts");
	write_file("/data/sub/gro", GRO_TEXT, 0644);
	gro = open("/ro/gro", O_RDONLY);
	must(gro >= 0 && unlink("/data/sub/gro") == 0, "a ghost on /ro");
	must(mkdir("/data/gone", 0750) == 0 && chdir("/data/gone") == 0 && rmdir("/data/gone") == 0, "remove the cwd");
}

static void check_ghosts(void)
{
	struct stat st;
	if (fstat(g1, &st) != 0 || st.st_nlink != 0 || st.st_size != G1_BYTES || (st.st_mode & 07777) != 0640)
		subject_fail("the fd is not on an unlinked %d-byte file (nlink %ld size %ld)", G1_BYTES, (long)st.st_nlink, (long)st.st_size);
	if (lseek(g1, 0, SEEK_CUR) != 1234)
		subject_fail("the unlinked file's offset changed");
	static unsigned char back[G1_BYTES];
	if (pread(g1, back, sizeof(back), 0) != G1_BYTES || memcmp(back, g1_data, sizeof(back)) != 0)
		subject_fail("the unlinked file's contents changed");
	char fdpath[64], link[4096];
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", g1);
	ssize_t n = readlink(fdpath, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (strcmp(link, "/data/g1 (deleted)") != 0)
		subject_fail("the unlinked file's fd reads %s", link);
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", gro);
	n = readlink(fdpath, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (strcmp(link, "/ro/gro (deleted)") != 0 || fstat(gro, &st) != 0 || st.st_nlink != 0)
		subject_fail("the fd on the ghost of /ro reads %s (nlink %ld)", link, (long)st.st_nlink);
	same_file(gro, GRO_TEXT, "the ghost on /ro");
	if (memcmp(g2, g2_data, sizeof(g2_data)) != 0)
		subject_fail("the mapping of the unlinked tmpfs file changed");
	if (stat(".", &st) != 0 || st.st_nlink != 0)
		subject_fail("the cwd is no longer a removed directory (nlink %ld)", (long)st.st_nlink);
	/* The names the restore used are gone again. */
	if (access("/data/g1", F_OK) == 0 || access("/t/g2", F_OK) == 0 || access("/data/gone", F_OK) == 0 || access("/ro/gro", F_OK) == 0)
		subject_fail("a ghost's name was left behind");
}

#define PTY_LINE "typed before the dump\n"

struct pty { int master, slave, index; };

/* A pair of the container's devpts, its slave the controlling terminal of this session. */
static struct pty open_pty(void)
{
	struct pty p;
	p.master = open("/dev/ptmx", O_RDWR | O_NOCTTY);
	must(p.master >= 0, "open /dev/ptmx");
	int unlock = 0;
	must(ioctl(p.master, TIOCSPTLCK, &unlock) == 0 && ioctl(p.master, TIOCGPTN, &p.index) == 0, "unlock the pty");
	char name[64];
	snprintf(name, sizeof(name), "/dev/pts/%d", p.index);
	p.slave = open(name, O_RDWR | O_NOCTTY);
	must(p.slave >= 0, "open the slave");
	must(ioctl(p.slave, TIOCSCTTY, 0) == 0, "TIOCSCTTY");
	struct winsize ws = { .ws_row = 33, .ws_col = 77 };
	must(ioctl(p.master, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ");
	must(fchown(p.slave, 7, 5) == 0, "chown the slave");
	/* No echo: the line stays in the slave's queue only. */
	struct termios tio;
	must(tcgetattr(p.slave, &tio) == 0, "tcgetattr");
	tio.c_lflag &= ~(tcflag_t)ECHO;
	must(tcsetattr(p.slave, TCSANOW, &tio) == 0, "tcsetattr");
	must(write(p.master, PTY_LINE, strlen(PTY_LINE)) == (ssize_t)strlen(PTY_LINE), "type into the master");
	return p;
}

static void check_pty(struct pty p)
{
	int index = -1;
	struct winsize ws;
	struct stat st;
	pid_t sid = 0;
	if (ioctl(p.master, TIOCGPTN, &index) != 0 || index != p.index)
		subject_fail("pty: index %d, was %d", index, p.index);
	if (ioctl(p.slave, TIOCGWINSZ, &ws) != 0 || ws.ws_row != 33 || ws.ws_col != 77)
		subject_fail("pty: window size %dx%d", ws.ws_row, ws.ws_col);
	if (fstat(p.slave, &st) != 0 || st.st_uid != 7 || st.st_gid != 5)
		subject_fail("pty: slave owner %d:%d", st.st_uid, st.st_gid);
	if (ioctl(p.slave, TIOCGSID, &sid) != 0 || sid != getpid())
		subject_fail("pty: the controlling terminal of session %d, not ours", sid);
	char buf[256] = "";
	fcntl(p.slave, F_SETFL, O_NONBLOCK);
	ssize_t n = read(p.slave, buf, sizeof(buf) - 1);
	if (n != (ssize_t)strlen(PTY_LINE) || memcmp(buf, PTY_LINE, strlen(PTY_LINE)) != 0)
		subject_fail("pty: the slave reads \"%s\" (%zd bytes)", n > 0 ? buf : "", n);
	must(write(p.slave, "back", 4) == 4, "write the slave");
	n = read(p.master, buf, sizeof(buf));
	if (n != 4 || memcmp(buf, "back", 4) != 0)
		subject_fail("pty: the master reads %zd bytes", n);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (subject_opt_long("stage", 1) == 1) {
		const char *root = subject_opt("root", NULL);
		const char *out = NULL;
		for (int i = 1; i + 1 < argc; i++)
			if (strcmp(argv[i], "--out") == 0)
				out = argv[i + 1];
		if (root == NULL || out == NULL || strncmp(out, root, strlen(root)) != 0)
			subject_fail("--root ROOT is needed, with --out inside it");
		char path[4096];
		snprintf(path, sizeof(path), "%s/init", root);
		copy_self(path);
		int userns = subject_opt_long("userns", 0) == 1;
		if (userns)
			give_to_mapped_root(root, out);
		const char *ext = subject_opt("ext", NULL);
		if (ext != NULL && subject_opt_long("ext-auto", 0) == 1) {
			ext_peer = (int)syscall(SYS_open_tree, AT_FDCWD, ext, OPEN_TREE_CLONE);
			must(ext_peer >= 0, "clone EXT (open_tree)");
		}
		int ready[2], maps[2] = { -1, -1 };
		must(pipe(ready) == 0 && (!userns || pipe(maps) == 0), "pipe");
		/* Born in the new namespaces (the launcher stays in ours: the pivot moves every task of a namespace). */
		long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD | (userns ? CLONE_NEWUSER : 0);
		pid_t init = (pid_t)syscall(SYS_clone, flags, 0, 0, 0, 0);
		must(init >= 0, "clone into new namespaces");
		if (init == 0) {
			close(ready[0]);
			if (userns)
				close(maps[1]);
			build(root, out + strlen(root), ready[1], maps[0]);
		}
		close(ready[1]);
		if (userns) {
			close(maps[0]);
			write_proc(init, "uid_map", UID_MAP);
			write_proc(init, "gid_map", GID_MAP);
			must(write(maps[1], "m", 1) == 1, "tell the child its maps are there");
			close(maps[1]);
		}
		char c;
		if (read(ready[0], &c, 1) != 1)
			_exit(1); /* the subject wrote its verdict */
		close(ready[0]);
		/* OUTFILE.ready names the subject by its pid here. */
		char tmp[4200], text[32];
		snprintf(path, sizeof(path), "%s.ready", out);
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		snprintf(text, sizeof(text), "%d\n", init);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, text, strlen(text)) < 0 || close(fd) != 0 || rename(tmp, path) != 0)
			_exit(1);
		signal(SIGTERM, SIG_IGN);
		int st;
		while (waitpid(init, &st, 0) < 0 && errno == EINTR)
			;
		_exit(0);
	}

	/* The subject: pid 1 of its namespaces, in its own tree. */
	int ready_fd = (int)subject_opt_long("ready-fd", -1);
	char log[4096];
	const char *out = subject_opt("out", "");
	snprintf(log, sizeof(log), "%.*s.log", (int)(strlen(out) > 4 ? strlen(out) - 4 : 0), out);
	/* Its stdio came from the harness, opened in our mount namespace: reopened in its own. */
	int lfd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
	int in = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || in < 0 || dup2(in, 0) < 0 || dup2(lfd, 1) < 0 || dup2(lfd, 2) < 0)
		subject_fail("reopen stdio in the new tree: %s", strerror(errno));
	close(lfd);
	close(in);
	if (getpid() != 1)
		subject_fail("the subject is pid %d of its namespace", getpid());
	if (setsid() < 0)
		subject_fail("setsid: %s", strerror(errno));
	write_file("/data/sub/file", RO_TEXT, 0644);
	int ro = open("/ro/file", O_RDONLY);
	int tf = open("/t/file", O_RDONLY);
	must(ro >= 0 && tf >= 0, "open /ro/file and /t/file");
	static char before[16384], after[16384];
	pid_t nested = subject_opt("nested", NULL) != NULL ? nested_child() : 0;
	/* A file of the nested namespace's /n, open and watched from ours (where /n is not mounted). */
	int ify = -1, wfd = -1, wd = -1;
	if (nested > 0) {
		char via[64];
		snprintf(via, sizeof(via), "/proc/%d/fd/100", nested);
		ify = inotify_init1(IN_NONBLOCK);
		wfd = open(via, O_WRONLY);
		wd = ify < 0 ? -1 : inotify_add_watch(ify, via, IN_MODIFY | IN_CLOSE_WRITE);
		must(ify >= 0 && wfd >= 0 && wd >= 0, "watch the nested namespace's /n/watched");
	}
	int ghosts = subject_opt_long("ghosts", 0) == 1;
	if (ghosts)
		make_ghosts();
	int userns = subject_opt_long("userns", 0) == 1;
	int owned = -1;
	if (userns) {
		write_file("/data/sub/owned", OWNED_TEXT, 0600);
		must(chown("/data/sub/owned", 1000, 1000) == 0, "chown /data/sub/owned");
		owned = open("/data/sub/owned", O_RDONLY);
		must(owned >= 0, "open /data/sub/owned");
		check_ids(owned);
	}
	int os = subject_opt_long("overmount-sock", 0) == 1;
	struct os_socks socks = { -1, -1, -1, -1, -1, -1 };
	if (os)
		socks = make_overmount_socks();
	tree_shape(before, sizeof(before));
	check_files();
	/* After check_files, which reads /t3. */
	if (subject_opt_long("overmount-sock", 0) == 2) {
		must(mkdir("/t3/sub", 0755) == 0, "mkdir /t3/sub");
		int l = unix_sock(SOCK_STREAM, "/t3/sub/covered", NULL);
		must(listen(l, 1) == 0, "listen on /t3/sub/covered");
		must(mount("t3-cover", "/t3/sub", "tmpfs", 0, "size=1m") == 0, "mount a tmpfs on /t3/sub");
	}
	int with_pty = subject_opt_long("pty", 0) != 0;
	struct pty pty = { -1, -1, -1 };
	if (with_pty)
		pty = open_pty();
	must(write(ready_fd, "r", 1) == 1, "tell the launcher");
	close(ready_fd);
	subject_log("ready");
	subject_wait_term();
	tree_shape(after, sizeof(after));
	if (strcmp(before, after) != 0) {
		subject_log("before:\n%s", before);
		subject_log("after:\n%s", after);
		subject_fail("the mount tree changed (see the log)");
	}
	check_files();
	if (nested > 0) {
		struct inotify_event ev[8];
		if (write(wfd, "x", 1) != 1)
			subject_fail("write to the nested namespace's /n/watched: %s", strerror(errno));
		ssize_t n = read(ify, ev, sizeof(ev));
		if (n < (ssize_t)sizeof(ev[0]) || ev[0].wd != wd || (ev[0].mask & IN_MODIFY) == 0)
			subject_fail("no IN_MODIFY on the watch of the nested namespace's /n/watched (read %zd)", n);
	}
	if (nested > 0) {
		int st;
		kill(nested, SIGTERM);
		while (waitpid(nested, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			subject_fail("the nested child failed (see the log)");
		if (access("/n/file", F_OK) == 0)
			subject_fail("the nested namespace's /n shows in the subject's");
	}
	if (ghosts)
		check_ghosts();
	if (subject_opt_long("overmount", 0) == 1)
		check_overmounts();
	if (os)
		check_overmount_socks(socks);
	if (userns)
		check_ids(owned);
	same_file(ro, RO_TEXT, "the fd on /ro/file");
	same_file(tf, FILE_TEXT, "the fd on /t/file");
	if (with_pty)
		check_pty(pty);
	subject_pass();
}
