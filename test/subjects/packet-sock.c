/*
 * packet-sock: packet sockets (AF_PACKET).
 *   20 SOCK_RAW, protocol 0, unbound: TPACKET_V2, PACKET_AUXDATA, an RX ring
 *      (4 blocks of 4 KiB, 2 KiB frames), promiscuous membership on lo
 *   21 SOCK_DGRAM, ETH_P_IP, bound to lo: PACKET_RESERVE 32, PACKET_ORIGDEV,
 *      fanout group 77 (hash), a multicast membership, a TX ring
 *   22 SOCK_DGRAM, ETH_P_IP, bound to lo, in 21's fanout group
 *   23 SOCK_PACKET, ETH_P_ALL, bound to "lo"
 *   20's RX ring is mapped into memory (shared), as libpcap does
 * With --orphan 1, a fifth packet socket's ring stays mapped after its fd
 * is closed: a dump must refuse it (no fd to make the socket again from).
 * After SIGTERM: names (protocol, device), options, rings (a second ring
 * is refused: EBUSY), memberships (dropping them works once), fanout; 22
 * still receives IPv4 on lo (the group spreads packets over 21 and 22).
 */
#define _GNU_SOURCE
#include "subject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#define FANOUT_ID 77
static const unsigned char mc[ETH_ALEN] = { 0x01, 0x00, 0x5e, 0x01, 0x02, 0x03 };

static int sock(int type, int proto)
{
	int fd = socket(AF_PACKET, type, proto);
	if (fd < 0)
		subject_fail("socket(AF_PACKET, %d): errno %d", type, errno);
	return fd;
}

static void bind_lo(int fd, int proto)
{
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(proto), .sll_ifindex = (int)if_nametoindex("lo") };
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		subject_fail("bind %d to lo: errno %d", fd, errno);
}

static struct packet_mreq mreq(int type, const unsigned char *addr)
{
	struct packet_mreq m = { .mr_ifindex = (int)if_nametoindex("lo"), .mr_type = (unsigned short)type };
	if (addr) {
		m.mr_alen = ETH_ALEN;
		memcpy(m.mr_address, addr, ETH_ALEN);
	}
	return m;
}

static void name_of(int fd, struct sockaddr_ll *a)
{
	socklen_t l = sizeof(*a);
	memset(a, 0, sizeof(*a));
	if (getsockname(fd, (struct sockaddr *)a, &l) != 0)
		subject_fail("getsockname %d: errno %d", fd, errno);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	int lo = (int)if_nametoindex("lo");

	subject_at(20, sock(SOCK_RAW, 0), "20");
	subject_setint(20, SOL_PACKET, PACKET_VERSION, TPACKET_V2, "version");
	subject_setint(20, SOL_PACKET, PACKET_AUXDATA, 1, "auxdata");
	struct tpacket_req rx = { .tp_block_size = 4096, .tp_block_nr = 4, .tp_frame_size = 2048, .tp_frame_nr = 8 };
	if (setsockopt(20, SOL_PACKET, PACKET_RX_RING, &rx, sizeof(rx)) != 0)
		subject_fail("rx ring: errno %d", errno);
	struct packet_mreq promisc = mreq(PACKET_MR_PROMISC, NULL);
	if (setsockopt(20, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof(promisc)) != 0)
		subject_fail("promisc: errno %d", errno);

	size_t ring_len = rx.tp_block_size * rx.tp_block_nr;
	volatile struct tpacket2_hdr *ring = mmap(NULL, ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, 20, 0);
	if (ring == MAP_FAILED)
		subject_fail("mmap ring: errno %d", errno);
	if (subject_opt_long("orphan", 0)) {
		int o = sock(SOCK_RAW, 0);
		if (setsockopt(o, SOL_PACKET, PACKET_RX_RING, &rx, sizeof(rx)) != 0 ||
		    mmap(NULL, ring_len, PROT_READ, MAP_SHARED, o, 0) == MAP_FAILED)
			subject_fail("orphan ring: errno %d", errno);
		close(o);
	}

	subject_at(21, sock(SOCK_DGRAM, htons(ETH_P_IP)), "21");
	bind_lo(21, ETH_P_IP);
	subject_setint(21, SOL_PACKET, PACKET_RESERVE, 32, "reserve");
	subject_setint(21, SOL_PACKET, PACKET_ORIGDEV, 1, "origdev");
	subject_setint(21, SOL_PACKET, PACKET_FANOUT, FANOUT_ID | (PACKET_FANOUT_HASH << 16), "fanout");
	struct packet_mreq multi = mreq(PACKET_MR_MULTICAST, mc);
	if (setsockopt(21, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &multi, sizeof(multi)) != 0)
		subject_fail("multicast: errno %d", errno);
	struct tpacket_req tx = { .tp_block_size = 4096, .tp_block_nr = 2, .tp_frame_size = 4096, .tp_frame_nr = 2 };
	if (setsockopt(21, SOL_PACKET, PACKET_TX_RING, &tx, sizeof(tx)) != 0)
		subject_fail("tx ring: errno %d", errno);

	subject_at(22, sock(SOCK_DGRAM, htons(ETH_P_IP)), "22");
	bind_lo(22, ETH_P_IP);
	subject_setint(22, SOL_PACKET, PACKET_FANOUT, FANOUT_ID | (PACKET_FANOUT_HASH << 16), "fanout 22");

	subject_at(23, sock(SOCK_PACKET, htons(ETH_P_ALL)), "23");
	struct sockaddr sp = { .sa_family = AF_PACKET };
	strcpy(sp.sa_data, "lo");
	if (bind(23, &sp, sizeof(sp)) != 0)
		subject_fail("bind 23: errno %d", errno);

	subject_ready();
	subject_wait_term();

	/* the ring is mapped at the same place, from socket 20, and reads as a ring the kernel owns */
	char want[64], line[256];
	snprintf(want, sizeof(want), "%lx-", (unsigned long)ring);
	struct stat st;
	if (fstat(20, &st) != 0)
		subject_fail("fstat 20");
	char sk[32];
	snprintf(sk, sizeof(sk), "socket:[%lu]", (unsigned long)st.st_ino);
	FILE *maps = fopen("/proc/self/maps", "r");
	int found = 0;
	while (maps && fgets(line, sizeof(line), maps))
		if (strncmp(line, want, strlen(want)) == 0 && strstr(line, sk))
			found = 1;
	if (maps)
		fclose(maps);
	if (!found)
		subject_fail("the ring of 20 is not mapped at %p", (void *)ring);
	if (ring->tp_status != TP_STATUS_KERNEL)
		subject_fail("ring frame 0: status %x", ring->tp_status);

	struct sockaddr_ll a;
	name_of(20, &a);
	if (a.sll_protocol != 0 || a.sll_ifindex != 0)
		subject_fail("20: protocol %x ifindex %d", a.sll_protocol, a.sll_ifindex);
	for (int fd = 21; fd <= 22; fd++) {
		name_of(fd, &a);
		if (a.sll_protocol != htons(ETH_P_IP) || a.sll_ifindex != lo)
			subject_fail("%d: protocol %x ifindex %d", fd, ntohs(a.sll_protocol), a.sll_ifindex);
		if (subject_getint(fd, SOL_PACKET, PACKET_FANOUT) != (FANOUT_ID | (PACKET_FANOUT_HASH << 16)))
			subject_fail("%d: fanout %x", fd, subject_getint(fd, SOL_PACKET, PACKET_FANOUT));
	}
	if (subject_getint(20, SOL_PACKET, PACKET_VERSION) != TPACKET_V2 || subject_getint(20, SOL_PACKET, PACKET_AUXDATA) != 1 || subject_getint(21, SOL_PACKET, PACKET_ORIGDEV) != 1 ||
	    subject_getint(21, SOL_PACKET, PACKET_RESERVE) != 32 || subject_getint(21, SOL_PACKET, PACKET_AUXDATA) != 0)
		subject_fail("options");
	if (setsockopt(20, SOL_PACKET, PACKET_RX_RING, &rx, sizeof(rx)) != -1 || errno != EBUSY)
		subject_fail("20 has no RX ring (errno %d)", errno);
	if (setsockopt(21, SOL_PACKET, PACKET_TX_RING, &tx, sizeof(tx)) != -1 || errno != EBUSY)
		subject_fail("21 has no TX ring (errno %d)", errno);
	if (setsockopt(20, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &promisc, sizeof(promisc)) != 0)
		subject_fail("20: promiscuous membership lost: errno %d", errno);
	if (setsockopt(21, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &multi, sizeof(multi)) != 0)
		subject_fail("21: multicast membership lost: errno %d", errno);
	struct sockaddr sp2;
	socklen_t l = sizeof(sp2);
	if (getsockname(23, &sp2, &l) != 0 || strcmp(sp2.sa_data, "lo") != 0)
		subject_fail("23: bound to \"%s\"", sp2.sa_data);
	subject_pass();
}
