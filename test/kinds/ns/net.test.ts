/**
 * The net namespace kind (src/kinds/ns/net.ts). The net-ns subject runs in
 * a net namespace of its own set up with ip(8), holding a TCP listener and
 * a UDP socket on its addresses; here: its images are CRIU's (netns-,
 * netdev-, ifaddr-, route-... read back by crit-ts and CRIU's crit), the
 * restore puts it in a new namespace (not ours) with lo up and its
 * addresses, and the subject checks its sockets, route and sysctls itself.
 * A persistent tap device comes back as it was (veths, bridges: net-veth,
 * net-veth.test.ts).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import type { NetDeviceEntry, NetnsEntry, TaskKobjIdsEntry } from '../../../src/images/messages.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive, startSubject } from '../../lib/subjects.js';
import type { Subject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, tempDir, waitTreeGone } from '../../e2e/helpers.js';
import { finishSubject, hasCrit, waitSleeping } from '../../lib/harness.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const IFF_UP = 0x1;
/** The magics `ip addr save` and `ip route save` write first (iproute2's dump headers). */
const IP_DUMP_MAGIC: Readonly<Record<string, number>> = { ifaddr: 0x47361222, route: 0x45311224, route6: 0x45311224 };

test('a task in a net namespace of its own: sysctls, lo, addresses, routes come back in a new namespace, with its TCP listener and UDP socket', { timeout: 120_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('net-ns');
  const ourNet = readlinkSync('/proc/self/ns/net');
  try {
    s = await startSubject('net-ns');
    const pid = s.pid;
    // (The kernel may give the new namespace the dumped one's inode number: that one is gone.)
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/net`), ourNet);
    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);

    const ids = readImage(join(dir, `ids-${pid}.img`)).entries[0] as unknown as TaskKobjIdsEntry;
    const inv = readImage(join(dir, 'inventory.img')).entries[0] as unknown as { root_ids: TaskKobjIdsEntry };
    const id = ids.net_ns_id as number;
    assert.notEqual(id, inv.root_ids.net_ns_id, 'the task had a net namespace of its own');
    const netns = readImage(join(dir, `netns-${id}.img`)).entries[0] as unknown as NetnsEntry;
    assert.equal(netns.all_conf4?.length, 30, 'CRIU 4.2 saves 30 ipv4 conf entries, by position');
    assert.equal(netns.all_conf4?.[12]?.iarg, 1, 'all/forwarding (position 12) was on');
    assert.equal(netns.unix_conf?.[0]?.iarg, 77);
    const devs = readImage(join(dir, `netdev-${id}.img`)).entries as unknown as NetDeviceEntry[];
    assert.equal(devs.length, 1);
    const lo = devs[0] as NetDeviceEntry;
    assert.deepEqual([lo.type, lo.name, lo.ifindex, lo.mtu], ['LOOPBACK', 'lo', 1, 65536]);
    assert.ok((lo.flags & IFF_UP) !== 0, 'lo was up');
    assert.equal(lo.conf4?.[0]?.iarg, 1, 'lo accept_local (position 0) was on');
    for (const [f, magic] of Object.entries(IP_DUMP_MAGIC)) {
      assert.equal(readFileSync(join(dir, `${f}-${id}.img`)).readUInt32LE(0), magic, `${f}-${id}.img is ip's dump`);
    }

    if (hasCrit()) {
      // CRIU's own decoder reads the namespace images.
      for (const f of readdirSync(dir).filter((n) => /^(netns|netdev)-/.test(n))) {
        execFileSync('crit', ['decode', '-i', join(dir, f)], { stdio: ['ignore', 'ignore', 'pipe'] });
      }
    }

    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, pid);
    assert.ok(isAlive(pid));
    const now = readlinkSync(`/proc/${pid}/ns/net`);
    assert.notEqual(now, ourNet, 'restored in a net namespace of its own');
    const addrs = execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', '-o', 'addr', 'show', 'dev', 'lo', 'up'], { encoding: 'utf8' });
    assert.match(addrs, /inet 10\.66\.0\.1\/24/);
    assert.match(addrs, /inet6 fd66::1\/64/);
    assert.doesNotMatch(execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' }), /10\.66\.0\.1/, 'nothing added to our namespace');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await finishSubject(s, dir);
  }
});

test('a persistent tap device (owner, group, mtu, address, up) comes back with its ifindex', { timeout: 60_000 }, async () => {
  const child = spawn('unshare', ['--net', 'sh', '-c', 'ip tuntap add dev ctt0 mode tap user 65534 group 65534 vnet_hdr && ip link set ctt0 mtu 1400 address 02:00:00:00:00:77 && ip link set ctt0 up && exec sleep 60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('net-tap');
  const tap = (p: number): Record<string, unknown> => {
    const l = (JSON.parse(execFileSync('nsenter', ['-t', String(p), '-n', 'ip', '-j', '-d', 'link', 'show', 'ctt0'], { encoding: 'utf8' })) as Record<string, unknown>[])[0] as Record<string, unknown>;
    const info = (l['linkinfo'] as { info_data: Record<string, unknown> }).info_data;
    return { ifindex: l['ifindex'], mtu: l['mtu'], address: l['address'], up: (l['flags'] as string[]).includes('UP'), ...info };
  };
  try {
    await waitSleeping(pid);
    const before = tap(pid);
    assert.deepEqual([before['type'], before['persist'], before['vnet_hdr']], ['tap', true, true]);
    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    const netdev = readdirSync(dir).find((n) => n.startsWith('netdev-')) as string;
    const d = (readImage(join(dir, netdev)).entries as unknown as NetDeviceEntry[]).find((x) => x.name === 'ctt0') as NetDeviceEntry;
    assert.equal(d.type, 'TUN');
    assert.deepEqual([d.tun?.owner, d.tun?.group, (d.tun?.flags ?? 0) & 0x4802], [65534, 65534, 0x4802], 'owner, group, IFF_TAP|IFF_PERSIST|IFF_VNET_HDR');
    if (hasCrit()) execFileSync('crit', ['decode', '-i', join(dir, netdev)], { stdio: ['ignore', 'ignore', 'pipe'] });
    await restore({ imagesDir: dir, progress: false });
    assert.ok(isAlive(pid));
    assert.deepEqual(tap(pid), before);
  } finally {
    await killAndWait(pid);
    removeDir(dir);
  }
});

test('--network-lock nftables locks the whole net namespace: kept when the tree is killed, removed when it runs on', { timeout: 60_000 }, async () => {
  const child = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('net-lock');
  const holder = join(dir, '..', `criu-ts-netns-holder-${pid}`);
  let mounted = false;
  try {
    await waitSleeping(pid, (p) => readlinkSync(`/proc/${p}/ns/net`) !== readlinkSync('/proc/self/ns/net'));
    const tables = (args: string[]): string => execFileSync('nsenter', [...args, 'nft', 'list', 'tables'], { encoding: 'utf8' });
    await dump({ pid, imagesDir: dir, progress: false, leaveRunning: true, networkLock: 'nftables' });
    assert.doesNotMatch(tables(['-t', String(pid), '-n']), /CRIU-/, 'a tree that runs on is unlocked');

    // Keep the namespace past the tree's death, as a runtime does.
    execFileSync('touch', [holder]);
    execFileSync('mount', ['--bind', `/proc/${pid}/ns/net`, holder]);
    mounted = true;
    removeDir(dir);
    const dir2 = tempDir('net-lock');
    try {
      await dump({ pid, imagesDir: dir2, progress: false, networkLock: 'nftables' });
      const inv = readImage(join(dir2, 'inventory.img')).entries[0] as unknown as { dump_criu_run_id: string };
      assert.match(tables([`--net=${holder}`]), new RegExp(`table inet CRIU-${inv.dump_criu_run_id}`), 'the killed tree\'s namespace stays locked');
      assert.doesNotMatch(execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }), new RegExp(`CRIU-${inv.dump_criu_run_id}`), 'ours is not');
    } finally {
      removeDir(dir2);
    }
  } finally {
    if (mounted) spawnSync('umount', [holder]);
    spawnSync('rm', ['-f', holder]);
    await killAndWait(pid);
    removeDir(dir);
  }
});

test('--network-lock iptables locks the whole net namespace with CRIU\'s chain (IPv4 and IPv6); a restore into it (--join-ns) lifts it', { timeout: 60_000 }, async () => {
  const name = `criu-ts-ipt-${process.pid}`;
  const file = `/run/netns/${name}`;
  execFileSync('ip', ['netns', 'add', name]);
  const child = spawn('nsenter', [`--net=${file}`, 'sleep', '60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('net-lock-ipt');
  const rules = (bin: string): string => execFileSync('nsenter', [`--net=${file}`, bin, '-t', 'filter'], { encoding: 'utf8' });
  try {
    await waitSleeping(pid);
    await dump({ pid, imagesDir: dir, progress: false, networkLock: 'iptables' });
    for (const bin of ['iptables-save', 'ip6tables-save']) {
      const r = rules(bin);
      assert.match(r, /^-A INPUT -j CRIU$/m, `${bin}: locked`);
      assert.match(r, /^-A CRIU -m mark --mark 0xc114 -j ACCEPT$/m);
      assert.match(r, /^-A CRIU -j DROP$/m);
    }
    assert.doesNotMatch(execFileSync('iptables-save', ['-t', 'filter'], { encoding: 'utf8' }), /^:CRIU /m, 'ours is not locked');
    await restore({ imagesDir: dir, progress: false, joinNs: [{ ns: 'net', file }] });
    assert.ok(isAlive(pid));
    for (const bin of ['iptables-save', 'ip6tables-save']) assert.doesNotMatch(rules(bin), /CRIU/, `${bin}: unlocked`);
  } finally {
    await killAndWait(pid);
    spawnSync('ip', ['netns', 'delete', name]);
    removeDir(dir);
  }
});
