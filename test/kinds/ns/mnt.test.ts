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
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive, startSubject, type Subject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, removeDir, tempDir, waitGone } from '../../e2e/helpers.js';
import { sameAsCritWithout } from '../files/round-trip.js';
import { SubjectRun } from '../../lib/subject-run.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 120_000 };

/** A private root for the subject: its mountpoints, a directory to bind, the harness's work dir at ROOT/w. */
function makeRoot(): string {
  const root = tempDir('mnt-root');
  for (const d of ['proc', 't', 't2', 't3', 'dev', 'ro', 'mq', 'w', 'data/sub', 'n', 'n2', 'o1', 'o2']) mkdirSync(join(root, d), { recursive: true });
  return root;
}

async function startInRoot(root: string, args: readonly string[] = []): Promise<Subject> {
  return startSubject('mnt-ns', ['--root', root, ...args], { static: true, launcher: true, workDir: join(root, 'w') });
}

test('a mount namespace under a private root comes back under --root: tmpfs files, binds, peers, a slave, proc, devpts, mqueue', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-ns');
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(root);
  try {
    const s = (run.subject = await startInRoot(root));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    const ids = readImage(join(dir, 'ids-1.img')).entries[0] as Record<string, number>;
    const file = `mountpoints-${ids['mnt_ns_id']}.img`;
    const mounts = readImage(join(dir, file)).entries as { mountpoint: string; fstype: number; root: string; shared_id?: number; master_id?: number; flags: number }[];
    const at = (mp: string): (typeof mounts)[number] => {
      const m = mounts.find((x) => x.mountpoint === mp);
      assert.ok(m, `${mp} in ${file}`);
      return m;
    };
    assert.deepEqual(mounts.map((m) => m.mountpoint).sort(), ['/', '/dev', '/dev/pts', '/mq', '/proc', '/ro', '/t', '/t2', '/t3']);
    // CRIU's fstype numbers: proc 1, tmpfs 5, devpts 6, mqueue 14; the root's own type is not one of them.
    assert.deepEqual([at('/proc').fstype, at('/t').fstype, at('/dev/pts').fstype, at('/mq').fstype, at('/').fstype], [1, 5, 6, 14, 0]);
    assert.equal(at('/').root, root);
    assert.equal(at('/ro').root, join(root, 'data/sub'));
    assert.equal(at('/ro').flags & 1, 1, '/ro is read-only (MS_RDONLY)');
    assert.equal(at('/t3').root, '/dir');
    assert.ok((at('/t').shared_id ?? 0) !== 0 && at('/t2').shared_id === at('/t').shared_id, '/t and /t2 are peers');
    assert.equal(at('/t3').master_id, at('/t').shared_id, '/t3 is a slave of their group');
    // One tar per tmpfs, named by its device.
    assert.equal(readdirSync(dir).filter((n) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(n)).length, 2);
    sameAsCritWithout(dir, file, ['ext_key']);

    // Without --root: one line, before anything is made.
    await assert.rejects(restore({ imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e) && e.code === 'EUSAGE', String(e));
      assert.match(e.message, /^the tree was dumped in a mount namespace of its own: --root DIR is needed to restore it$/);
      return true;
    });

    const before = readFileSync('/proc/self/mountinfo', 'utf8');
    const res = await restore({ imagesDir: dir, progress: false, root, verify: true });
    run.restored = res.pid;
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'no mount of the restore shows in our namespace');
    assert.notEqual(readlinkSync(`/proc/${res.pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'), 'the root has a mount namespace of its own');
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

test('a container in a user namespace of its own (zdtm\'s uns maps) under a root only the real root can reach: restored with --root, its ids, maps and a file it owns seen as before', TIMEOUT, async () => {
  const top = tempDir('mnt-uns');
  const root = join(top, 'root');
  mkdirSync(root);
  for (const d of ['proc', 't', 't2', 't3', 'dev', 'ro', 'mq', 'w', 'data/sub']) mkdirSync(join(root, d), { recursive: true });
  const dir = tempDir('mnt-uns-img');
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(top);
  try {
    chmodSync(top, 0o755); // the subject, as its mapped root, builds its tree through it
    const s = (run.subject = await startInRoot(root, ['--userns', '1']));
    // Then, as zdtm does (runc's /run/runc is so): the mapped root can no longer walk to --root.
    chmodSync(top, 0o700);
    assert.notEqual(readlinkSync(`/proc/${s.pid}/ns/user`), readlinkSync('/proc/self/ns/user'), 'the subject has a user namespace of its own');
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    const ids = readImage(join(dir, 'ids-1.img')).entries[0] as Record<string, number>;
    const mounts = readImage(join(dir, `mountpoints-${ids['mnt_ns_id']}.img`)).entries as { mountpoint: string; options: string }[];
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
  } finally {
    await run.cleanup();
  }
});

test('a pty pair of the container\'s own devpts comes back in it: index, queued line, window size, slave owner, controlling terminal', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-pty');
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(root);
  try {
    const s = (run.subject = await startInRoot(root, ['--pty', '1']));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    // The session the terminal controls, as the tree sees it: its init.
    const infos = readImage(join(dir, 'tty-info.img')).entries as { id: number; sid: number }[];
    assert.equal(infos.find((i) => i.id % 2 === 1)?.sid, 1, JSON.stringify(infos));
    assert.equal(readImage(join(dir, 'tty-data.img')).entries.length, 1, 'the line typed into the master is saved');
    const res = await restore({ imagesDir: dir, progress: false, root });
    run.restored = res.pid;
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

test('a filesystem outside the namespace\'s dumped mounts is refused with one line unless given with --external; a failed restore leaves no mount', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-ext');
  let s: Subject | undefined;
  try {
    s = await startInRoot(root);
    // /dev named as external: saved with its key, not its files.
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false, extMounts: [{ key: '/dev', value: 'DEV' }] });
    for (const p of r.pids) assert.ok(await waitGone(p));
    const ids = readImage(join(dir, 'ids-1.img')).entries[0] as Record<string, number>;
    const mounts = readImage(join(dir, `mountpoints-${ids['mnt_ns_id']}.img`)).entries as { mountpoint: string; ext_key?: string }[];
    assert.equal(mounts.find((m) => m.mountpoint === '/dev')?.ext_key, 'DEV');
    assert.equal(readdirSync(dir).filter((n) => n.startsWith('tmpfs-dev-')).length, 1, 'only /t is tarred');
    // Its source is needed at restore.
    await assert.rejects(restore({ imagesDir: dir, progress: false, root }), (e: unknown) => {
      assert.ok(isCriuTsError(e) && e.code === 'EUSAGE', String(e));
      assert.match(e.message, /^mount \d+ at \/dev is external \(key DEV\): give its source with --external mnt\[DEV\]:PATH$/);
      return true;
    });
    // A source that does not exist fails the restore inside the new namespace: nothing is left here.
    const before = readFileSync('/proc/self/mountinfo', 'utf8');
    await assert.rejects(restore({ imagesDir: dir, progress: false, root, extMounts: [{ key: 'DEV', value: join(root, 'no-such-dir') }] }));
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before);
  } finally {
    s?.cleanup();
    removeDir(dir);
    removeDir(root);
  }
});

test('a net namespace no task is in, held by a bind mount in the tree (`ip netns add` style), is refused at dump with one line (as CRIU); the tree runs on', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-nsfs');
  let s: Subject | undefined;
  try {
    s = await startInRoot(root, ['--nsfs', '1']);
    const pid = s.pid;
    await assert.rejects(dump({ pid, imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.match(e.message, /^task \d+.*mount \d+ at \/nsf.*nsfs filesystem is outside every dumped mount: name it with --external mnt\[\/nsf\]:KEY$/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.ok(isAlive(pid), 'the tree runs on');
  } finally {
    s?.cleanup();
    removeDir(dir);
    removeDir(root);
  }
});

test('an --external mnt[KEY] naming no mount of the tree is ignored, as by CRIU (runc names device nodes too); the tree runs on', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-ext-unused');
  let s: Subject | undefined;
  try {
    s = await startInRoot(root);
    await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true, extMounts: [{ key: '/nowhere', value: 'X' }] });
    const mnts = readdirSync(dir).filter((n) => n.startsWith('mountpoints-'));
    assert.equal(mnts.length, 1);
    const entries = readImage(join(dir, mnts[0] as string)).entries;
    assert.ok(!entries.some((e) => e['ext_key'] === 'X' || e['mountpoint'] === '/nowhere'), 'no entry for the unused key');
    assert.ok(isAlive(s.pid), 'the tree runs on');
    const out = await s.terminateAndResult();
    assert.ok(out.ok, out.text);
  } finally {
    s?.cleanup();
    removeDir(dir);
    removeDir(root);
  }
});

test('a nested mount namespace (a child that unshared its own: a tmpfs with a file, a slave bind, peers across the two namespaces) comes back with the tree; a file of it open and watched (inotify) from the outer namespace, where it is not mounted, is that file again', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-nested');
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(root);
  try {
    const s = (run.subject = await startInRoot(root, ['--nested', '1']));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.equal(r.pids.length, 2);
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    const idsOf = (pid: number): number => (readImage(join(dir, `ids-${pid}.img`)).entries[0] as Record<string, number>)['mnt_ns_id'] as number;
    const child = readdirSync(dir).map((n) => /^ids-(\d+)\.img$/.exec(n)?.[1]).filter((x) => x !== undefined && x !== '1').map(Number)[0] as number;
    const [outerId, innerId] = [idsOf(1), idsOf(child)];
    assert.notEqual(outerId, innerId, 'the child has a mount namespace id of its own');
    type M = { mountpoint: string; fstype: number; root: string; shared_id?: number; master_id?: number };
    const outer = readImage(join(dir, `mountpoints-${outerId}.img`)).entries as M[];
    const inner = readImage(join(dir, `mountpoints-${innerId}.img`)).entries as M[];
    const at = (ms: M[], mp: string): M => {
      const m = ms.find((x) => x.mountpoint === mp);
      assert.ok(m, mp);
      return m;
    };
    assert.ok(!outer.some((m) => m.mountpoint === '/n'), 'the nested tmpfs is not in the outer namespace');
    assert.equal(at(inner, '/n').fstype, 5);
    assert.equal(at(inner, '/t').shared_id, at(outer, '/t').shared_id, '/t is one peer group across the namespaces');
    assert.equal(at(inner, '/n2').master_id, at(inner, '/n').shared_id);
    assert.equal(at(inner, '/t2').shared_id ?? 0, 0);
    // Three tmpfs tars: /t and /dev of the outer namespace, /n of the nested one; /t's copy is not saved twice.
    assert.equal(readdirSync(dir).filter((n) => /^tmpfs-dev-\d+\.tar\.gz\.img$/.test(n)).length, 3);
    sameAsCritWithout(dir, `mountpoints-${innerId}.img`, ['ext_key']);

    const before = readFileSync('/proc/self/mountinfo', 'utf8');
    const res = await restore({ imagesDir: dir, progress: false, root, verify: true });
    run.restored = res.pid;
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), before, 'no mount of the restore shows in our namespace');
    const kids = readFileSync(`/proc/${res.pid}/task/${res.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    assert.equal(kids.length, 1);
    assert.notEqual(readlinkSync(`/proc/${kids[0]}/ns/mnt`), readlinkSync(`/proc/${res.pid}/ns/mnt`), 'the child is in a mount namespace of its own');
    await run.passesAt(res.pid);
  } finally {
    await run.cleanup();
  }
});

test('unix sockets whose names a mount made later covers are bound again under it: a listener with an accepted and a waiting connection, a datagram socket with a relative name, a message and a client', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-overmount-sock');
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(root);
  try {
    const s = (run.subject = await startInRoot(root, ['--overmount-sock', '1']));
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
  } finally {
    await run.cleanup();
  }
});

test('a covered absolute unix socket name whose mount is not the root mount is refused at dump with one line; the tree runs on', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-overmount-sock-abs');
  let s: Subject | undefined;
  try {
    s = await startInRoot(root, ['--overmount-sock', '2']);
    const pid = s.pid;
    await assert.rejects(dump({ pid, imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.match(e.message, /^task \d+ fd \d+: unix socket \d+: its name \/t3\/sub\/covered is covered by a mount made over it after the bind: the name starts at \/, not on the socket's own mount \(\/t3\), so it cannot be bound again under the cover$/);
      return true;
    });
    assert.ok(isAlive(pid), 'the tree runs on');
  } finally {
    s?.cleanup();
    removeDir(dir);
    removeDir(root);
  }
});

test('a tmpfs overmounted on its own mountpoint, and one under a tmpfs on a directory above it: their hidden files are saved and come back under the mounts over them; binds whose sources were removed come back on removed sources', TIMEOUT, async () => {
  const root = makeRoot();
  const dir = tempDir('mnt-overmount');
  const run = new SubjectRun();
  run.removes(dir);
  run.removes(root);
  try {
    const s = (run.subject = await startInRoot(root, ['--overmount', '1']));
    const r = await dump({ pid: s.pid, imagesDir: dir, progress: false });
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    const ids = readImage(join(dir, 'ids-1.img')).entries[0] as Record<string, number>;
    const mounts = readImage(join(dir, `mountpoints-${ids['mnt_ns_id']}.img`)).entries as { mountpoint: string; source: string }[];
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
  } finally {
    await run.cleanup();
  }
});
