/*
 * net-tun: tun files held by a task in a net namespace of its own (it
 * unshares one): /dev/net/tun opened and never attached; attached to ctun0
 * (tun, not persistent: it lives by this file); two queues of ctunq (tun,
 * multi-queue, not persistent), the second detached; attached to ctap0
 * (tap, not persistent, a fixed hardware address). After SIGTERM: the
 * first can still be attached (to ctun9); the others are attached to
 * their devices with their flags, the detached queue still detached
 * (attaching it works, detaching the other works), ctap0 has its address;
 * closing the file of ctun0 takes the device away (it is not persistent
 * after restore either).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int attach(int fd, const char *name, int flags)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	ifr.ifr_flags = (short)flags;
	return ioctl(fd, TUNSETIFF, &ifr);
}

static int open_tun(const char *name, int flags)
{
	int fd = open("/dev/net/tun", O_RDWR);
	if (fd < 0)
		subject_fail("open /dev/net/tun: errno %d", errno);
	if (name != NULL && attach(fd, name, flags) != 0)
		subject_fail("attach %s: errno %d", name, errno);
	return fd;
}

static int queue(int fd, int flags)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = (short)flags;
	return ioctl(fd, TUNSETQUEUE, &ifr);
}

static void check_attached(int fd, const char *name, int flags)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) != 0)
		subject_fail("%s: TUNGETIFF: errno %d", name, errno);
	if (strcmp(ifr.ifr_name, name) != 0)
		subject_fail("attached to %s, not %s", ifr.ifr_name, name);
	if ((ifr.ifr_flags & flags) != flags)
		subject_fail("%s: flags 0x%x lack 0x%x", name, ifr.ifr_flags, flags);
}

static int exists(const char *name)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	int r = s >= 0 && ioctl(s, SIOCGIFINDEX, &ifr) == 0;
	if (s >= 0)
		close(s);
	return r;
}

static void hwaddr(const char *name, unsigned char out[6])
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0 || ioctl(s, SIOCGIFHWADDR, &ifr) != 0)
		subject_fail("%s: SIOCGIFHWADDR: errno %d", name, errno);
	close(s);
	memcpy(out, ifr.ifr_hwaddr.sa_data, 6);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	if (unshare(CLONE_NEWNET) != 0)
		subject_fail("unshare(CLONE_NEWNET): errno %d", errno);
	if (system("ip link set lo up") != 0)
		subject_fail("lo up");
	int loose = open_tun(NULL, 0);
	int tun = open_tun("ctun0", IFF_TUN | IFF_NO_PI);
	int q1 = open_tun("ctunq", IFF_TUN | IFF_MULTI_QUEUE);
	int q2 = open_tun("ctunq", IFF_TUN | IFF_MULTI_QUEUE);
	if (queue(q2, IFF_DETACH_QUEUE) != 0)
		subject_fail("detach the second queue: errno %d", errno);
	int tap = open_tun("ctap0", IFF_TAP | IFF_NO_PI);
	if (system("ip link set ctap0 address 02:00:00:00:00:42") != 0)
		subject_fail("ctap0 address");
	unsigned char mac[6], now[6];
	hwaddr("ctap0", mac);

	subject_ready();
	subject_wait_term();

	if (attach(loose, "ctun9", IFF_TUN) != 0)
		subject_fail("the unattached file cannot be attached: errno %d", errno);
	check_attached(tun, "ctun0", IFF_TUN | IFF_NO_PI);
	check_attached(q1, "ctunq", IFF_TUN | IFF_MULTI_QUEUE);
	check_attached(q2, "ctunq", IFF_TUN | IFF_MULTI_QUEUE | IFF_DETACH_QUEUE);
	if (queue(q2, IFF_ATTACH_QUEUE) != 0)
		subject_fail("the detached queue cannot be attached: errno %d", errno);
	if (queue(q1, IFF_DETACH_QUEUE) != 0)
		subject_fail("the first queue cannot be detached: errno %d", errno);
	check_attached(tap, "ctap0", IFF_TAP | IFF_NO_PI);
	hwaddr("ctap0", now);
	if (memcmp(mac, now, 6) != 0)
		subject_fail("ctap0's address changed");
	close(tun);
	if (exists("ctun0"))
		subject_fail("ctun0 outlives its file: it became persistent");
	subject_pass();
}
