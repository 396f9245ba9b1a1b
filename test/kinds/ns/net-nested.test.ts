/**
 * Nested net namespaces (src/kinds/ns/net.ts, net-images.ts): the
 * net-nested subject, a container-like tree whose child has a net
 * namespace of its own nested in the root's, a veth between the two, is
 * dumped, killed and restored. Its images: one netns-/netdev-<id>.img per
 * namespace, each veth end naming the other's namespace (peer_nsid) and
 * ifindex, the netnsids each namespace gave the other (netns_entry.nsids,
 * given back the same). After the restore the tasks are in two new
 * namespaces (the grandchild back in the root's), and the subject checks
 * itself that the root reaches the child's listener over the veth and
 * that each namespace has its own sockets, devices and sysctls, and that
 * the child's socket of the root's namespace (made before it unshared) is
 * back in the root's (the restore made it there: its ns_id), and that the
 * fd each holds of the other's namespace names it again. A socket, or a
 * namespace file, of a namespace no task of the tree is in is refused at
 * dump with one line, the tree unharmed.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import type { NetDeviceEntry, NetnsEntry, TaskKobjIdsEntry } from '../../../src/images/messages.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive, startSubject } from '../../lib/subjects.js';
import type { Subject } from '../../lib/subjects.js';
import { becomeSubreaper, childrenOf as children, closeInheritedFds, killAndWait, rejectsOneLine, removeDir, tempDir, waitFor, waitTreeGone } from '../../lib/harness.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

/** link-netnsid of device `dev` as task `pid`'s namespace shows it. */
function linkNetnsid(pid: number, dev: string): number | undefined {
  const out = execFileSync('nsenter', ['-t', String(pid), '-n', 'ip', '-j', '-d', 'link', 'show', dev], { encoding: 'utf8' });
  return (JSON.parse(out) as { link_netnsid?: number }[])[0]?.link_netnsid;
}

async function finish(s: Subject | undefined, dir: string): Promise<void> {
  if (s !== undefined) {
    for (const c of children(s.pid)) for (const g of children(c)) try { process.kill(g, 'SIGKILL'); } catch { /* gone */ }
    for (const c of children(s.pid)) try { process.kill(c, 'SIGKILL'); } catch { /* gone */ }
    await killAndWait(s.pid);
    s.cleanup();
  }
  removeDir(dir);
}

test('a child in a net namespace nested in the tree\'s, a veth between the two: both namespaces come back, talking over the veth', { timeout: 120_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('net-nested');
  const ourNet = readlinkSync('/proc/self/ns/net');
  try {
    s = await startSubject('net-nested');
    const root = s.pid;
    await waitFor(() => children(root).length === 1 && children(children(root)[0] as number).length === 1, 10_000);
    const child = children(root)[0] as number;
    const grandchild = children(child)[0] as number;
    const nsid = { root: linkNetnsid(root, 'vr0'), child: linkNetnsid(child, 'vc0') };
    assert.notEqual(nsid.root, undefined, 'vr0 names its peer\'s namespace');
    await dump({ pid: root, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);

    const idOf = (pid: number): number => (readImage(join(dir, `ids-${pid}.img`)).entries[0] as unknown as TaskKobjIdsEntry).net_ns_id as number;
    const rootId = idOf(root);
    const childId = idOf(child);
    assert.notEqual(rootId, childId, 'two net namespaces');
    assert.equal(idOf(grandchild), rootId, 'the grandchild was in the root\'s');
    const devs = (id: number): NetDeviceEntry[] => readImage(join(dir, `netdev-${id}.img`)).entries as unknown as NetDeviceEntry[];
    const vr0 = devs(rootId).find((d) => d.name === 'vr0');
    const vc0 = devs(childId).find((d) => d.name === 'vc0');
    assert.ok(vr0 !== undefined && vc0 !== undefined);
    assert.deepEqual([vr0.type, vr0.peer_nsid, vr0.peer_ifindex], ['VETH', childId, vc0.ifindex], 'vr0 names vc0 and its namespace');
    assert.deepEqual([vc0.type, vc0.peer_nsid, vc0.peer_ifindex], ['VETH', rootId, vr0.ifindex], 'vc0 names vr0 and its namespace');
    assert.equal(vc0.mtu, 1400);
    // The child's sockets: one of its own namespace, one of the root's (bound before it unshared).
    const files = readImage(join(dir, 'files.img')).entries as unknown as { usk?: { ns_id?: number } }[];
    const unixNs = files.filter((f) => f.usk !== undefined).map((f) => f.usk?.ns_id);
    assert.ok(unixNs.includes(childId) && unixNs.includes(rootId), `unix sockets of both namespaces (${unixNs.join(', ')})`);
    // Each holds a namespace file of the other's net namespace: named by its ns id, as CRIU writes it.
    const nsFiles = (files as unknown as { nsf?: { ns_id: number; ns_cflag: number } }[]).flatMap((f) => (f.nsf?.ns_cflag === 0x40000000 ? [f.nsf.ns_id] : []));
    assert.ok(nsFiles.includes(childId) && nsFiles.includes(rootId), `net namespace files of both namespaces (${nsFiles.join(', ')})`);
    const netns = (id: number): NetnsEntry => readImage(join(dir, `netns-${id}.img`)).entries[0] as unknown as NetnsEntry;
    assert.deepEqual(netns(rootId).nsids, [{ target_ns_id: childId, netnsid_value: nsid.root }]);
    assert.deepEqual(netns(childId).nsids, [{ target_ns_id: rootId, netnsid_value: nsid.child }]);
    if (spawnSync('crit', ['-h'], { stdio: 'ignore' }).status === 0) {
      // CRIU's own decoder reads them.
      for (const f of readdirSync(dir).filter((n) => /^(netns|netdev)-/.test(n))) execFileSync('crit', ['decode', '-i', join(dir, f)], { stdio: ['ignore', 'ignore', 'pipe'] });
    }

    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, root);
    assert.ok(isAlive(root) && isAlive(child) && isAlive(grandchild));
    const rootNet = readlinkSync(`/proc/${root}/ns/net`);
    const childNet = readlinkSync(`/proc/${child}/ns/net`);
    assert.notEqual(rootNet, ourNet, 'the root in a net namespace of its own');
    assert.ok(childNet !== ourNet && childNet !== rootNet, 'the child in another, nested');
    assert.equal(readlinkSync(`/proc/${grandchild}/ns/net`), rootNet, 'the grandchild back in the root\'s');
    assert.deepEqual({ root: linkNetnsid(root, 'vr0'), child: linkNetnsid(child, 'vc0') }, nsid, 'the same netnsids');
    assert.doesNotMatch(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }), /\b(vr0|vc0)\b/, 'nothing made in our namespace');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await finish(s, dir);
  }
});

/**
 * The subject with `--foreign-sock mode` (its child holds something of a
 * net namespace no task of the tree is in) is refused at dump with one
 * line, `message(child)`; the tree runs on and passes its own check.
 */
async function refusedForeign(mode: string, name: string, message: (child: number) => RegExp): Promise<void> {
  let s: Subject | undefined;
  const dir = tempDir(name);
  try {
    s = await startSubject('net-nested', ['--foreign-sock', mode]);
    const root = s.pid;
    await waitFor(() => children(root).length === 1, 10_000);
    const child = children(root)[0] as number;
    await rejectsOneLine(dump({ pid: root, imagesDir: dir, progress: false }), 'EUNSUPPORTED', message(child));
    assert.ok(isAlive(root) && isAlive(child));
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await finish(s, dir);
  }
}

test('a namespace file of a net namespace no task of the tree is in is refused at dump, naming it (as CRIU); the tree is unharmed', { timeout: 60_000 }, () =>
  refusedForeign('2', 'net-nested-foreign-fd', (child) => new RegExp(`^task ${child} fd \\d+: net:\\[\\d+\\] is a namespace the task is not in \\(its own is net:\\[\\d+\\]\\): no task of the tree is in it`)));

test('a socket of a net namespace no task of the tree is in is refused at dump, naming it; the tree is unharmed', { timeout: 60_000 }, () =>
  refusedForeign('1', 'net-nested-foreign', (child) => new RegExp(`^task ${child} fd \\d+: socket:\\[\\d+\\] belongs to net namespace net:\\[\\d+\\], which no task of the tree is in \\(the task's own is net:\\[\\d+\\]\\)`)));
