/**
 * Raw IPv4/IPv6 sockets and ICMP ping sockets (INETSK with SOCK_RAW, or
 * SOCK_DGRAM with IPPROTO_ICMP/ICMPV6): addresses, the echo identifier,
 * ICMP filters, raw and IP options, connected; images as crit decodes them.
 * Ping sockets need net.ipv4.ping_group_range to hold gid 0: the test widens
 * it for its run and puts the old value back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { InetSkEntry } from '../../../src/images/messages.js';
import { fileEntries, roundTrip, sameAsCritWithout, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

const RANGE = '/proc/sys/net/ipv4/ping_group_range';
let oldRange: string | undefined;

before(() => {
  setUpRunner();
  oldRange = readFileSync(RANGE, 'utf8').trim();
  const [lo, hi] = oldRange.split(/\s+/).map(Number);
  if (lo === undefined || hi === undefined || lo > 0 || hi < 0) writeFileSync(RANGE, '0 0');
});

after(() => {
  if (oldRange !== undefined) writeFileSync(RANGE, oldRange.replace(/\s+/, ' '));
});

/** Fields CRIU 4.2 writes that crit 3.17 does not know (it drops them). */
const NEWER_FIELDS = ['ttl', 'tos', 'pktinfo', 'tcp_opts'];

test('raw sockets and ICMP ping sockets keep addresses, identifier, filters and options', { timeout: STEP_TIMEOUT_MS }, async () => {
  await roundTrip({
    name: 'inet-raw',
    args: ['--ping', '1'],
    check(dir) {
      const isk = fileEntries(dir).filter((e) => e.type === 'INETSK').map((e) => e.isk as InetSkEntry);
      assert.equal(isk.length, 7);
      const icmp = isk.find((i) => i.type === 3 && i.proto === 1);
      assert.deepEqual(icmp?.ip_opts?.raw?.icmpv_filter, [~1 >>> 0]);
      assert.deepEqual(icmp?.src_addr, [0x0100007f]);
      assert.equal(icmp?.src_port, 1, 'a raw socket\'s port is its protocol');
      const icmp6 = isk.find((i) => i.type === 3 && i.proto === 58);
      assert.equal(icmp6?.ip_opts?.raw?.icmpv_filter?.length, 8);
      const udp4 = isk.find((i) => i.type === 3 && i.proto === 17 && i.family === 2);
      assert.deepEqual(udp4?.ip_opts, { freebind: true, raw: { nodefrag: true }, pktinfo: true, tos: 8, ttl: 32 });
      const udp6 = isk.find((i) => i.type === 3 && i.proto === 17 && i.family === 10);
      assert.equal(udp6?.ip_opts?.freebind, true);
      assert.equal(udp6?.ip_opts?.pktinfo, true);
      const hdrincl = isk.find((i) => i.proto === 255);
      assert.equal(hdrincl?.ip_opts?.raw?.hdrincl, true);
      assert.equal(hdrincl?.state, 1, 'connected');
      assert.deepEqual(hdrincl?.dst_addr, [0x0200007f]);
      const ping = isk.find((i) => i.type === 2 && i.proto === 1);
      assert.equal(ping?.state, 1);
      assert.ok((ping?.src_port ?? 0) !== 0, 'the echo identifier');
      assert.ok(isk.some((i) => i.type === 2 && i.proto === 58 && i.src_port === 0));
      sameAsCritWithout(dir, 'files.img', NEWER_FIELDS);
    },
  });
});
