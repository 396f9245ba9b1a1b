/**
 * Devices of a tree's net namespace (src/kinds/ns/net-devices.ts) whose
 * other side is outside it, as a container's: the net-veth subject in its
 * own namespace gets from this test, as a runtime would give it, a veth
 * named eth0 whose peer is in our namespace on a bridge, and serves
 * "hello" over it. Dumped and killed, it is refused at restore without
 * --veth-pair (one line naming eth0), then restored with --veth-pair
 * eth0=OUT@BRIDGE: the new peer is on the bridge and the subject answers
 * over the veth again. Its images: netdev-<ns>.img's VETH entry without
 * peer_nsid, read by crit-ts and by CRIU's crit. The --external and
 * --veth-pair forms are checked through the CLI parser and the API. A
 * macvlan on a device of ours comes back with --external macvlan[IN]:OUTDEV.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readExternals } from '../../../src/api/externals.js';
import { readImage } from '../../../src/images/index.js';
import type { NetDeviceEntry } from '../../../src/images/messages.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive, startSubject } from '../../lib/subjects.js';
import type { Subject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, tempDir, waitFor, waitTreeGone } from '../../e2e/helpers.js';
import { hasCrit, waitSleeping } from '../../lib/harness.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

function hello(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, timeout: 5000 });
    let got = '';
    s.on('data', (d) => { got += d.toString(); });
    // Closed at once: a half-open connection would leave the subject's end,
    // once it is killed, an orphan in FIN-WAIT-2 that holds its net namespace
    // (and so the veth) for tcp_fin_timeout, 60 s.
    s.on('end', () => {
      s.destroy();
      resolve(got);
    });
    s.on('timeout', () => { s.destroy(); reject(new Error(`no answer from ${host}:${port}`)); });
    s.on('error', reject);
  });
}

test('a veth whose peer was outside: refused without --veth-pair, restored with its peer on our bridge, answering over it', { timeout: 120_000 }, async () => {
  const tag = String(process.pid % 10000);
  const br = `ctsbr${tag}`;
  const out0 = `ctsv${tag}a`;
  const out1 = `ctsv${tag}b`;
  const port = 7071;
  let s: Subject | undefined;
  const dir = tempDir('net-veth');
  const ourNet = readlinkSync('/proc/self/ns/net');
  const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
  try {
    ip('link', 'add', br, 'type', 'bridge');
    ip('addr', 'add', '10.91.0.1/24', 'dev', br);
    ip('link', 'set', br, 'up');
    s = await startSubject('net-veth', ['--outside', '1', '--port', String(port)]);
    const pid = s.pid;
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/net`), ourNet);
    // What a runtime does: a veth into the namespace, its end here on the bridge.
    ip('link', 'add', out0, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid));
    ip('link', 'set', out0, 'master', br, 'up');
    const inNs = (...args: string[]): string => execFileSync('nsenter', ['-t', String(pid), '-n', ...args], { encoding: 'utf8' });
    inNs('ip', 'addr', 'add', '10.91.0.2/24', 'dev', 'eth0');
    inNs('ip', 'link', 'set', 'eth0', 'up');
    assert.equal(await hello('10.91.0.2', port), 'hello\n', 'it answers over the veth');
    const eth0 = inNs('ip', '-o', 'link', 'show', 'eth0');

    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    // The kernel tears a dead namespace's devices down in a work queue: the peer goes a moment later.
    const gone = new RegExp(`${out0}[@:]`);
    // Up to 30 s: the kernel's net namespace clean-up is one queue for every namespace that died, and can lag after many.
    assert.ok(await waitFor(() => !gone.test(ip('-o', 'link')), 30_000), 'its peer went with the namespace');
    const netdev = readdirSync(dir).find((n) => n.startsWith('netdev-')) as string;
    const devs = readImage(join(dir, netdev)).entries as unknown as NetDeviceEntry[];
    const veth = devs.find((d) => d.name === 'eth0') as NetDeviceEntry;
    assert.equal(veth.type, 'VETH');
    assert.equal(veth.peer_nsid, undefined, 'its peer was in another namespace');
    assert.equal(veth.flags & 1, 1, 'it was up');
    if (hasCrit()) execFileSync('crit', ['decode', '-i', join(dir, netdev)], { stdio: ['ignore', 'ignore', 'pipe'] });

    await assert.rejects(restore({ imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, /device eth0 \(veth\) had its peer outside the namespace: name the peer to make with --veth-pair eth0=OUTNAME\[@BRIDGE\] \(or --external veth\[eth0\]:OUTNAME\)$/);
      return true;
    });
    assert.ok(!isAlive(pid));
    await assert.rejects(restore({ imagesDir: dir, progress: false, vethPairs: [{ inside: 'eth0', outside: br }] }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EBUSY');
      assert.match(e.message, new RegExp(`device eth0 \\(veth\\): its peer's name ${br} is taken by a device here`));
      return true;
    }, 'a peer name taken here is refused before anything is made');
    assert.ok(!isAlive(pid));

    const r = await restore({ imagesDir: dir, progress: false, vethPairs: [{ inside: 'eth0', outside: out1, bridge: br }] });
    assert.equal(r.pid, pid);
    assert.match(ip('-o', 'link', 'show', out1), new RegExp(`master ${br} .*state (UP|LOWERLAYERDOWN)|master ${br}`), 'the new peer is on the bridge');
    assert.match(ip('-o', 'link', 'show', out1), /[<,]UP[,>]/, 'and up');
    const again = inNs('ip', '-o', 'link', 'show', 'eth0');
    assert.equal(again.replace(/@if\d+/, ''), eth0.replace(/@if\d+/, ''), 'eth0 as it was (ifindex, address, mtu, flags)');
    assert.equal(await hello('10.91.0.2', port), 'hello\n', 'it answers over the veth again');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    if (s !== undefined) {
      s.kill();
      await killAndWait(s.pid);
      s.cleanup();
    }
    spawnSync('ip', ['link', 'del', br]);
    spawnSync('ip', ['link', 'del', out1]);
    spawnSync('ip', ['link', 'del', out0]);
    removeDir(dir);
  }
});

test('--external veth[IN]:OUT[@BRIDGE], macvlan[IN]:OUTDEV and --veth-pair: read as CRIU, the rest refused with one line', () => {
  const r = readExternals(['veth[eth0]:host0@br0', 'macvlan[mv0]:eth1', 'veth[eth1]:host1'], [{ inside: 'eth2', outside: 'host2' }], 'restore');
  assert.deepEqual(r.vethPairs, [
    { inside: 'eth2', outside: 'host2' },
    { inside: 'eth0', outside: 'host0', bridge: 'br0' },
    { inside: 'eth1', outside: 'host1' },
  ]);
  assert.deepEqual(r.macvlans, [{ inside: 'mv0', lower: 'eth1' }]);
  assert.deepEqual(readExternals(['veth[eth0]:host0'], [], 'dump'), { vethPairs: [], macvlans: [], netNs: [], netdevs: [] }, 'at dump they are kept for nothing, as CRIU');
  const refused = (ext: string[], code: string, re: RegExp): void => {
    assert.throws(() => readExternals(ext, [], 'restore'), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, code);
      assert.match(e.message, re);
      return true;
    });
  };
  refused(['mnt[/x]:y'], 'EUNSUPPORTED', /^--external mnt\[\/x\]:y: mnt\[\.\.\.\] is not supported yet/);
  refused(['veth[eth0]'], 'EUSAGE', /^--external veth\[eth0\]: expected veth\[NAME\]:VALUE$/);
  refused(['veth[eth0]:a/b'], 'EUSAGE', /is not an interface name/);
  refused(['veth[eth0]:a', 'veth[eth0]:b'], 'EUSAGE', /veth eth0 is given twice/);
  refused(['macvlan[mv0]:'], 'EUSAGE', /expected macvlan\[IN\]:OUTDEV/);
});

test('a macvlan on a device of ours: refused without --external macvlan[...], made again on it with its mode, ifindex and address', { timeout: 60_000 }, async () => {
  const tag = String(process.pid % 10000);
  const lower = `ctsm${tag}a`;
  const child = spawn('unshare', ['--net', 'sleep', '60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('net-macvlan');
  const ourNet = readlinkSync('/proc/self/ns/net');
  const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' });
  const mv = (): Record<string, unknown> => {
    const l = (JSON.parse(execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', '-j', '-d', 'link', 'show', 'mv0'], { encoding: 'utf8' })) as Record<string, unknown>[])[0] as Record<string, unknown>;
    const info = l['linkinfo'] as { info_kind: string; info_data: { mode: string } };
    return { ifindex: l['ifindex'], address: l['address'], up: (l['flags'] as string[]).includes('UP'), kind: info.info_kind, mode: info.info_data.mode };
  };
  try {
    await waitSleeping(pid, (p) => readlinkSync(`/proc/${p}/ns/net`) !== ourNet);
    ip('link', 'add', lower, 'type', 'veth', 'peer', 'name', `ctsm${tag}b`);
    ip('link', 'set', lower, 'up');
    ip('link', 'add', 'link', lower, 'name', 'mv0', 'index', '17', 'netns', String(pid), 'type', 'macvlan', 'mode', 'private');
    execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', 'link', 'set', 'mv0', 'up']);
    const before = mv();
    assert.deepEqual([before['ifindex'], before['kind'], before['mode'], before['up']], [17, 'macvlan', 'private', true]);
    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    await assert.rejects(restore({ imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.match(e.message, /device mv0 \(macvlan\): name the device it sits on with --external macvlan\[mv0\]:OUTDEV$/);
      return true;
    });
    await restore({ imagesDir: dir, progress: false, external: [`macvlan[mv0]:${lower}`] });
    assert.ok(isAlive(pid));
    assert.deepEqual(mv(), before);
  } finally {
    await killAndWait(pid);
    spawnSync('ip', ['link', 'del', lower]);
    removeDir(dir);
  }
});
