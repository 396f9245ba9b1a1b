/**
 * The mount namespace kind (src/kinds/ns/mnt/): a tree in mount, pid, uts,
 * ipc and net namespaces of its own under a private root (the mnt-ns
 * subject: a tmpfs with files, peers and a slave, a read-only bind of the
 * root's filesystem, proc, devpts, mqueue) is dumped, killed and restored
 * under --root; the subject checks its mount tree and files from inside.
 * crit 3.17 reads our mountpoints image. The refusals say one line.
 * The same tree in a user namespace of its own (zdtm's uns maps), its root
 * below a directory only the real root may enter (as runc's /run/runc and
 * zdtm's uns flavour have it), comes back there too.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { isAlive } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, rejectsOneLine } from '../../lib/harness.js';
import { sameAsCritWithout } from '../files/round-trip.js';
import { at, dumpGone, inRoot, mountsFile, mountsOf } from './mnt-root.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 120_000 };

test('a mount namespace under a private root comes back under --root: tmpfs files, binds, peers, a slave, proc, devpts, mqueue', TIMEOUT, () => inRoot('mnt-ns', async ({ root, dir, run, start }) => {
  const s = await start();
  await dumpGone(s.pid, dir);
  const file = mountsFile(dir);
  const mounts = mountsOf<{ mountpoint: string; fstype: number; root: string; shared_id?: number; master_id?: number; flags: number }>(dir);
  assert.deepEqual(mounts.map((m) => m.mountpoint).sort(), ['/', '/dev', '/dev/pts', '/mq', '/proc', '/ro', '/t', '/t2', '/t3']);
  // CRIU's fstype numbers: proc 1, tmpfs 5, devpts 6, mqueue 14; the root's own type is not one of them.
  assert.deepEqual([at(mounts, '/proc').fstype, at(mounts, '/t').fstype, at(mounts, '/dev/pts').fstype, at(mounts, '/mq').fstype, at(mounts, '/').fstype], [1, 5, 6, 14, 0]);
  assert.equal(at(mounts, '/').root, root);
  assert.equal(at(mounts, '/ro').root, join(root, 'data/sub'));
  assert.equal(at(mounts, '/ro').flags & 1, 1, '/ro is read-only (MS_RDONLY)');
  assert.equal(at(mounts, '/t3').root, '/dir');
  assert.ok((at(mounts, '/t').shared_id ?? 0) !== 0 && at(mounts, '/t2').shared_id === at(mounts, '/t').shared_id, '/t and /t2 are peers');
  assert.equal(at(mounts, '/t3').master_id, at(mounts, '/t').shared_id, '/t3 is a slave of their group');
  // One tar per tmpfs, named by its device.
  assert.equal(readdirSync(dir).filter((n) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(n)).length, 2);
  sameAsCritWithout(dir, file, ['ext_key']);

  // Without --root: one line, before anything is made.
  await rejectsOneLine(restore({ imagesDir: dir, progress: false }), 'EUSAGE', /^the tree was dumped in a mount namespace of its own: --root DIR is needed to restore it$/);

  const before = readFileSync('/proc/self/mountinfo', 'utf8');
  const res = await restore({ imagesDir: dir, progress: false, root, verify: true });
  run.restored = res.pid;
  assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'no mount of the restore shows in our namespace');
  assert.notEqual(readlinkSync(`/proc/${res.pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'), 'the root has a mount namespace of its own');
  await run.passesAt(res.pid);
}));

test('a container in a user namespace of its own (zdtm\'s uns maps) under a root only the real root can reach: restored with --root, its ids, maps and a file it owns seen as before', TIMEOUT, () => inRoot('mnt-uns', async ({ root, dir, run, start }) => {
  const top = dirname(root);
  chmodSync(top, 0o755); // the subject, as its mapped root, builds its tree through it
  const s = await start(['--userns', '1']);
  // Then, as zdtm does (runc's /run/runc is so): the mapped root can no longer walk to --root.
  chmodSync(top, 0o700);
  assert.notEqual(readlinkSync(`/proc/${s.pid}/ns/user`), readlinkSync('/proc/self/ns/user'), 'the subject has a user namespace of its own');
  await dumpGone(s.pid, dir);
  const mounts = mountsOf<{ mountpoint: string; options: string }>(dir);
  // An owner option is shown as the host sees it and saved as the tree does (CRIU's images): /t's files keep theirs.
  assert.ok(mounts.every((m) => !/(^|,)(uid|gid)=(2\d{4}|4\d{5})(,|$)/.test(m.options)), mounts.map((m) => m.options).join(' | '));
  // The tmpfs's tar holds owners as the tree sees them (as CRIU's does): /t/file and its hard link are 1:2 inside.
  const tars = readdirSync(dir).filter((n) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(n));
  const listing = tars.map((n) => spawnSync('tar', ['-tvzf', join(dir, n), '--numeric-owner'], { encoding: 'utf8' }).stdout).join('');
  assert.match(listing, /^-rw-r----- 1\/2 .* \.\/(file|link)$/m, listing);
  const res = await restore({ imagesDir: dir, progress: false, root, verify: true });
  run.restored = res.pid;
  assert.notEqual(readlinkSync(`/proc/${res.pid}/ns/user`), readlinkSync('/proc/self/ns/user'), 'restored in a user namespace of its own');
  assert.match(readFileSync(`/proc/${res.pid}/status`, 'latin1'), /^Uid:\s+20000\s+20000\s+20000\s+20000$/m, 'its ids are the mapped root\'s here');
  await run.passesAt(res.pid);
}, true));

test('a pty pair of the container\'s own devpts comes back in it: index, queued line, window size, slave owner, controlling terminal', TIMEOUT, () => inRoot('mnt-pty', async ({ root, dir, run, start }) => {
  const s = await start(['--pty', '1']);
  await dumpGone(s.pid, dir);
  // The session the terminal controls, as the tree sees it: its init.
  const infos = readImage(join(dir, 'tty-info.img')).entries as { id: number; sid: number }[];
  assert.equal(infos.find((i) => i.id % 2 === 1)?.sid, 1, JSON.stringify(infos));
  assert.equal(readImage(join(dir, 'tty-data.img')).entries.length, 1, 'the line typed into the master is saved');
  const res = await restore({ imagesDir: dir, progress: false, root });
  run.restored = res.pid;
  await run.passesAt(res.pid);
}));

test('a filesystem outside the namespace\'s dumped mounts is refused with one line unless given with --external; a failed restore leaves no mount', TIMEOUT, () => inRoot('mnt-ext', async ({ root, dir, start }) => {
  const s = await start();
  // /dev named as external: saved with its key, not its files.
  await dumpGone(s.pid, dir, { extMounts: [{ key: '/dev', value: 'DEV' }] });
  const mounts = mountsOf<{ mountpoint: string; ext_key?: string }>(dir);
  assert.equal(mounts.find((m) => m.mountpoint === '/dev')?.ext_key, 'DEV');
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('tmpfs-dev-')).length, 1, 'only /t is tarred');
  // Its source is needed at restore.
  await rejectsOneLine(restore({ imagesDir: dir, progress: false, root }), 'EUSAGE', /^mount \d+ at \/dev is external \(key DEV\): give its source with --external mnt\[DEV\]:PATH$/);
  // A source that does not exist fails the restore inside the new namespace: nothing is left here.
  const before = readFileSync('/proc/self/mountinfo', 'utf8');
  await assert.rejects(restore({ imagesDir: dir, progress: false, root, extMounts: [{ key: 'DEV', value: join(root, 'no-such-dir') }] }));
  assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before);
}));

test('a net namespace no task is in, held by a bind mount in the tree (`ip netns add` style), is refused at dump with one line (as CRIU); the tree runs on', TIMEOUT, () => inRoot('mnt-nsfs', async ({ dir, start }) => {
  const { pid } = await start(['--nsfs', '1']);
  await rejectsOneLine(dump({ pid, imagesDir: dir, progress: false }), 'EUNSUPPORTED', /^task \d+.*mount \d+ at \/nsf.*nsfs filesystem is outside every dumped mount: name it with --external mnt\[\/nsf\]:KEY$/);
  assert.ok(isAlive(pid), 'the tree runs on');
}));

test('an --external mnt[KEY] naming no mount of the tree is ignored, as by CRIU (runc names device nodes too); the tree runs on', TIMEOUT, () => inRoot('mnt-ext-unused', async ({ dir, start }) => {
  const s = await start();
  await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true, extMounts: [{ key: '/nowhere', value: 'X' }] });
  const mnts = readdirSync(dir).filter((n) => n.startsWith('mountpoints-'));
  assert.equal(mnts.length, 1);
  const entries = readImage(join(dir, mnts[0] as string)).entries;
  assert.ok(!entries.some((e) => e['ext_key'] === 'X' || e['mountpoint'] === '/nowhere'), 'no entry for the unused key');
  assert.ok(isAlive(s.pid), 'the tree runs on');
  const out = await s.terminateAndResult();
  assert.ok(out.ok, out.text);
}));

test('a nested mount namespace (a child that unshared its own: a tmpfs with a file, a slave bind, peers across the two namespaces) comes back with the tree; a file of it open and watched (inotify) from the outer namespace, where it is not mounted, is that file again', TIMEOUT, () => inRoot('mnt-nested', async ({ root, dir, run, start }) => {
  const s = await start(['--nested', '1']);
  assert.equal((await dumpGone(s.pid, dir)).length, 2);
  const child = readdirSync(dir).map((n) => /^ids-(\d+)\.img$/.exec(n)?.[1]).filter((x) => x !== undefined && x !== '1').map(Number)[0] as number;
  assert.notEqual(mountsFile(dir, 1), mountsFile(dir, child), 'the child has a mount namespace id of its own');
  type M = { mountpoint: string; fstype: number; root: string; shared_id?: number; master_id?: number };
  const outer = mountsOf<M>(dir, 1);
  const inner = mountsOf<M>(dir, child);
  assert.ok(!outer.some((m) => m.mountpoint === '/n'), 'the nested tmpfs is not in the outer namespace');
  assert.equal(at(inner, '/n').fstype, 5);
  assert.equal(at(inner, '/t').shared_id, at(outer, '/t').shared_id, '/t is one peer group across the namespaces');
  assert.equal(at(inner, '/n2').master_id, at(inner, '/n').shared_id);
  assert.equal(at(inner, '/t2').shared_id ?? 0, 0);
  // Three tmpfs tars: /t and /dev of the outer namespace, /n of the nested one; /t's copy is not saved twice.
  assert.equal(readdirSync(dir).filter((n) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(n)).length, 3);
  sameAsCritWithout(dir, mountsFile(dir, child), ['ext_key']);

  const before = readFileSync('/proc/self/mountinfo', 'utf8');
  const res = await restore({ imagesDir: dir, progress: false, root, verify: true });
  run.restored = res.pid;
  assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'no mount of the restore shows in our namespace');
  const kids = readFileSync(`/proc/${res.pid}/task/${res.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  assert.equal(kids.length, 1);
  assert.notEqual(readlinkSync(`/proc/${kids[0]}/ns/mnt`), readlinkSync(`/proc/${res.pid}/ns/mnt`), 'the child is in a mount namespace of its own');
  await run.passesAt(res.pid);
}));

test('unix sockets whose names a mount made later covers are bound again under it: a listener with an accepted and a waiting connection, a datagram socket with a relative name, a message and a client', TIMEOUT, () => inRoot('mnt-overmount-sock', async ({ root, dir, run, start }) => {
  const s = await start(['--overmount-sock', '1']);
  await dump({ pid: s.pid, imagesDir: dir, progress: false });
  const files = readImage(join(dir, 'files.img')).entries as { type: string; usk?: { name: Buffer; name_dir?: string; mnt_id?: number; deleted?: boolean } }[];
  const named = files.flatMap((f) => (f.usk && f.usk.name.length > 0 ? [f.usk] : []));
  const own = (n: string): (typeof named)[number] | undefined => named.find((u) => u.name.toString().replace(/\0$/, '') === n && u.mnt_id !== undefined);
  // Covered, not gone: the socket's own mount recorded, as CRIU records it, and no `deleted`.
  for (const n of ['/os/listen', 'os/dgram']) {
    const u = own(n);
    assert.ok(u, `${n}: a socket entry with its mount id`);
    assert.notEqual(u.deleted, true, `${n} is not dumped as unlinked`);
  }
  assert.equal(own('os/dgram')?.name_dir, '/');
  // The dumped sockets' files are still under the covered /os of the root's filesystem.
  assert.ok(lstatSync(join(root, 'os/listen')).isSocket());
  const res = await restore({ imagesDir: dir, progress: false, root });
  run.restored = res.pid;
  await run.passesAt(res.pid);
}));

test('a covered absolute unix socket name whose mount is not the root mount is refused at dump with one line; the tree runs on', TIMEOUT, () => inRoot('mnt-overmount-sock-abs', async ({ dir, start }) => {
  const { pid } = await start(['--overmount-sock', '2']);
  await rejectsOneLine(dump({ pid, imagesDir: dir, progress: false }), 'EUNSUPPORTED', /^task \d+ fd \d+: unix socket \d+: its name \/t3\/sub\/covered is covered by a mount made over it after the bind: the name starts at \/, not on the socket's own mount \(\/t3\), so it cannot be bound again under the cover$/);
  assert.ok(isAlive(pid), 'the tree runs on');
}));

test('a tmpfs overmounted on its own mountpoint, and one under a tmpfs on a directory above it: their hidden files are saved and come back under the mounts over them; binds whose sources were removed come back on removed sources', TIMEOUT, () => inRoot('mnt-overmount', async ({ root, dir, run, start }) => {
  const s = await start(['--overmount', '1']);
  await dumpGone(s.pid, dir);
  const mounts = mountsOf<{ mountpoint: string; source: string }>(dir);
  assert.deepEqual(mounts.filter((m) => m.mountpoint.startsWith('/o')).map((m) => `${m.mountpoint} ${m.source}`), ['/o1 under', '/o1 over', '/o2/in deep', '/o2 above']);
  // As CRIU writes them: the root without mountinfo's "//deleted", and `deleted` set.
  const gone = mounts.filter((m) => m.mountpoint === '/gd' || m.mountpoint === '/gf') as unknown as { mountpoint: string; root: string; deleted?: boolean }[];
  assert.deepEqual(gone.map((m) => `${m.mountpoint} ${m.root} ${String(m.deleted)}`), [`/gd ${root}/data/gone true`, `/gf ${root}/data/gonefile true`]);
  // Every tmpfs has its tar, the hidden ones too: /t, /dev and the four.
  const tars = readdirSync(dir).filter((n) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(n));
  assert.equal(tars.length, 6);
  const listing = tars.map((n) => spawnSync('tar', ['-tzf', join(dir, n)], { encoding: 'utf8' }).stdout).join('');
  assert.equal(listing.split('\n').filter((l) => l === './file').length, 4, listing); // /t's and three of the four
  const before = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root));
  const res = await restore({ imagesDir: dir, progress: false, root });
  run.restored = res.pid;
  assert.deepEqual(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root)), before, 'no mount of the restore shows in our namespace');
  await run.passesAt(res.pid);
}));
