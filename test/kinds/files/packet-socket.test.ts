/**
 * Packet sockets (PACKETSK): raw, datagram and SOCK_PACKET sockets, bound
 * or not, with their TPACKET settings, rings, memberships and a fanout
 * group; a ring mapped into the task's memory (VMA_AREA_SOCKET) mapped again
 * from the restored socket; images as crit decodes them; a ring whose
 * socket has no fd left refused at dump in one line.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readImage } from '../../../src/images/index.js';
import type { FileEntry, MmEntry, PacketSockEntry } from '../../../src/images/messages.js';
import { readdirSync } from 'node:fs';
import { fileEntries, roundTrip, sameAsCrit, setUpRunner, STEP_TIMEOUT_MS, refusedAtDump } from './round-trip.js';

before(setUpRunner);

test('packet sockets keep protocol, device, TPACKET settings, rings, memberships and fanout', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'packet-sock',
    check(dir) {
      const psk = fileEntries(dir).filter((e) => e.type === 'PACKETSK').map((e) => e.psk as PacketSockEntry);
      assert.equal(psk.length, 4);
      const raw = psk.find((p) => p.type === 3);
      assert.equal(raw?.version, 1, 'TPACKET_V2');
      assert.equal(raw?.aux_data, true);
      assert.deepEqual(raw?.rx_ring && [raw.rx_ring.block_size, raw.rx_ring.block_nr, raw.rx_ring.frame_size, raw.rx_ring.frame_nr], [4096, 4, 2048, 8]);
      assert.equal(raw?.mclist?.length, 1);
      const dgram = psk.filter((p) => p.type === 2);
      assert.equal(dgram.length, 2);
      assert.ok(dgram.every((p) => p.protocol === 0x0008 && p.ifindex === 1), 'ETH_P_IP in network order, on lo');
      assert.ok(dgram.every((p) => p.fanout === (77 | (0 << 16))));
      assert.equal(dgram.filter((p) => p.tx_ring !== undefined).length, 1);
      assert.ok(dgram.some((p) => p.reserve === 32 && p.orig_dev && p.mclist?.[0]?.addr.length === 6));
      assert.ok(psk.some((p) => p.type === 10 && p.ifindex === 1), 'SOCK_PACKET bound to lo');
      // The ring: a socket VMA (VMA_AREA_REGULAR | VMA_AREA_SOCKET) whose shmid is the raw socket's file id.
      const mmImg = readdirSync(dir).find((n) => /^mm-\d+\.img$/.test(n)) ?? '';
      const mm = readImage(join(dir, mmImg)).entries[0] as unknown as MmEntry;
      const ring = (mm.vmas ?? []).filter((v) => (v.status & (1 << 11)) !== 0);
      assert.equal(ring.length, 1);
      assert.equal(ring[0]?.status, (1 << 11) | 1);
      const rawFile = fileEntries(dir).find((e: FileEntry) => e.type === 'PACKETSK' && e.psk?.type === 3);
      assert.equal(ring[0]?.shmid, BigInt(rawFile?.id ?? -1));
      assert.equal((ring[0]?.end ?? 0n) - (ring[0]?.start ?? 0n), 16384n);
      sameAsCrit(dir, ['files.img', mmImg]);
    },
  });
});

test('a packet ring whose socket has no fd left is refused at dump in one line, and the task keeps running', { timeout: STEP_TIMEOUT_MS }, async () => {
  await refusedAtDump('packet-sock', ['--orphan', '1'], /^task \d+: mapping 0x[0-9a-f]+-0x[0-9a-f]+ socket:\[\d+\]: no fd of the task holds this socket any more, so it cannot be made again$/);
});
