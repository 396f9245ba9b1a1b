/**
 * The cgroup kind (kinds/cgroup): the `cgroup` subject sits in a cgroup v2
 * directory of its own with its child one below; its images are read by
 * crit 3.17; the directories, removed between dump and restore, come back
 * with their mode and properties as --manage-cgroups says, and each mode
 * refuses what it must with one line, leaving nothing behind.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { readImage } from '../../src/images/index.js';
import type { CgroupEntry, CoreEntry, InventoryEntry } from '../../src/images/messages.js';
import { isAlive, startSubject, type Subject } from '../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitGone, waitTreeGone, killSubject } from '../lib/harness.js';
import { sameAsCritWithout, setUpRunner, STEP_TIMEOUT_MS } from './files/round-trip.js';

before(setUpRunner);

/** The first cgroup2 mount whose root is "/" (as the subject finds it), or undefined. */
function v2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    const f = pre?.split(' ');
    if (post?.startsWith('cgroup2 ') && f?.[3] === '/') return f[4];
  }
  return undefined;
}

/** What a subject killed before its own cleanup leaves: its cgroup directories (now empty). */
function removeCgroups(cg: string | undefined): void {
  if (cg === undefined) return;
  for (const d of ['inner', 'empty', '']) {
    try {
      rmdirSync(join(cg, d));
    } catch {
      // gone already
    }
  }
}

function v2Path(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
  assert.ok(line, `no cgroup v2 line for ${pid}`);
  return line.slice(3);
}

const MOUNT = v2Mount();
const skip = MOUNT === undefined ? 'no cgroup2 mount on this machine' : false;

/**
 * The cgroup subject, in the cgroup v2 directory `own` of its own (`cg` in
 * the mount), and an images dir, for the length of body; the subject, its
 * cgroups and the dir are gone after, whatever happens.
 */
async function withCgroupSubject(prefix: string, body: (s: Subject, own: string, cg: string, dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir(prefix);
  let s: Subject | undefined;
  let cg: string | undefined;
  try {
    s = await startSubject('cgroup', []);
    const own = v2Path(s.pid);
    cg = join(MOUNT as string, own);
    await body(s, own, cg, dir);
  } finally {
    await killSubject(s);
    removeCgroups(cg);
    removeDir(dir);
  }
}

test('cgroup v2: memberships, directories and properties made again; modes none, strict, soft; crit 3.17 reads cgroup.img', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  await withCgroupSubject('kind-cgroup', async (s, own, cg, dir) => {
    assert.match(own, /\/criu-ts-cg-\d+$/);
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.ok(await waitGone(s.pid), `pid ${s.pid} still exists after the dump`);

    // The images: the subject's set and its child's, our own (set 1) left out; both cores name their set.
    const cgImg = readImage(join(dir, 'cgroup.img')).entries[0] as unknown as CgroupEntry;
    const inv = readImage(join(dir, 'inventory.img')).entries[0] as unknown as InventoryEntry;
    assert.equal(inv.root_cg_set, 1);
    const v2Of = (id: number | undefined): string | undefined => cgImg.sets?.find((x) => x.id === id)?.ctls?.find((m) => m.name === '')?.path;
    const core = readImage(join(dir, `core-${s.pid}.img`)).entries[0] as unknown as CoreEntry;
    assert.equal(v2Of(core.thread_core?.cg_set), own);
    assert.equal(core.tc?.cg_set, core.thread_core?.cg_set);
    const v2 = cgImg.controllers?.find((c) => c.cnames?.[0] === '');
    const head = v2?.dirs?.find((d) => `/${d.dir_name}` === own);
    assert.ok(head, `no directory ${own} in cgroup.img`);
    assert.deepEqual(head.children?.map((c) => c.dir_name).sort(), ['empty', 'inner']);
    assert.equal(head.properties?.find((p) => p.name === 'cgroup.max.descendants')?.value, '5');
    assert.equal((head.children?.find((c) => c.dir_name === 'empty')?.dir_perms?.mode ?? 0) & 0o7777, 0o751);
    // crit 3.17 reads it all but is_threaded (CRIU 3.18's).
    sameAsCritWithout(dir, 'cgroup.img', ['is_threaded']);

    // strict: the directories still exist (the dump killed the tasks, not their cgroups).
    await assert.rejects(restore({ imagesDir: dir, progress: false, manageCgroups: 'strict' }), /exists already \(--manage-cgroups=strict\)/);
    assert.ok(!isAlive(s.pid), 'a refused restore left the task');
    for (const d of ['inner', 'empty', '']) rmdirSync(join(cg, d));
    // none: they must exist.
    await assert.rejects(restore({ imagesDir: dir, progress: false, manageCgroups: 'none' }), /does not exist \(--manage-cgroups=none does not make it\)/);
    assert.ok(!existsSync(cg) && !isAlive(s.pid), 'a refused restore left something');
    // soft (CRIU's default): made again, with the mode and the limit.
    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, s.pid);
    assert.equal(v2Path(s.pid), own);
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
    assert.ok(!existsSync(cg), 'the subject removes its cgroups at exit');
  });
});

test('--cgroup-dump-controller keeps only the hierarchies named; --manage-cgroups=ignore: the restored tasks stay in our cgroups', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  await withCgroupSubject('kind-cgroup-ignore', async (s, own, _cg, dir) => {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, cgroupDumpController: [''] });
    assert.ok(await waitGone(s.pid));
    const cgImg = readImage(join(dir, 'cgroup.img')).entries[0] as unknown as CgroupEntry;
    assert.deepEqual(cgImg.sets?.map((x) => x.ctls?.map((m) => m.name)), [[''], ['']], 'only v2 in both sets');
    assert.deepEqual(cgImg.controllers?.map((c) => c.cnames), [['']]);
    await restore({ imagesDir: dir, progress: false, manageCgroups: 'ignore' });
    assert.equal(v2Path(s.pid), v2Path(process.pid));
    assert.notEqual(v2Path(s.pid), own);
    const res = await s.terminateAndResult(30_000);
    assert.match(res.text, /FAIL: pid \d+ in .*, want .*criu-ts-cg-/);
  });
});

/** Start `sh -c script` detached; wait until the process named `exe` runs at `pid` (the sh itself or its child). */
async function startShell(script: string, exe: string, childOf = false): Promise<{ root: number; task: number }> {
  const sh = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
  sh.unref();
  const root = sh.pid as number;
  for (let i = 0; i < 300; i++) {
    try {
      const task = childOf ? Number(readFileSync(`/proc/${root}/task/${root}/children`, 'utf8').trim().split(' ')[0]) : root;
      if (task > 0 && readlinkSync(`/proc/${task}/exe`).endsWith(`/${exe}`)) return { root, task };
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${script}: ${exe} never ran`);
}

test('`unshare --cgroup` in a cgroup of its own: restored in a new cgroup namespace rooted at that cgroup (made again)', { timeout: 60_000, skip }, async () => {
  const own = v2Path(process.pid);
  const rel = `${own === '/' ? '' : own}/criu-ts-cgns-${process.pid}`;
  const cg = join(MOUNT as string, rel);
  mkdirSync(cg);
  const dir = tempDir('kind-cgroupns');
  let pid = 0;
  try {
    ({ root: pid } = await startShell(`echo $$ > ${cg}/cgroup.procs && exec unshare --cgroup sleep 60`, 'sleep'));
    const ours = readlinkSync('/proc/self/ns/cgroup');
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/cgroup`), ours);
    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    const set = (readImage(join(dir, 'cgroup.img')).entries[0] as unknown as CgroupEntry).sets?.[0];
    const member = set?.ctls?.find((m) => m.name === '');
    assert.equal(member?.path, rel);
    assert.equal(member?.cgns_prefix, rel.length, 'the namespace is rooted at the task\'s own cgroup');
    rmdirSync(cg);
    await restore({ imagesDir: dir, progress: false });
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/cgroup`), ours, 'restored in a cgroup namespace of its own');
    assert.equal(v2Path(pid), rel);
    // Seen from inside its namespace, the task is at its root.
    const inside = execFileSync('nsenter', ['-t', String(pid), '-C', 'cat', `/proc/${pid}/cgroup`], { encoding: 'utf8' });
    assert.match(inside, /^0::\/$/m);
  } finally {
    if (pid > 0) {
      await killAndWait(pid);
    }
    try {
      rmdirSync(cg);
    } catch {
      // gone
    }
    removeDir(dir);
  }
});

test('a child in another cgroup namespace than the root: dump refused with one line naming it, tree unharmed', { timeout: 60_000 }, async () => {
  const dir = tempDir('kind-cgroupns-nested');
  let root = 0;
  try {
    const t = await startShell('unshare --cgroup sleep 60 & wait', 'sleep', true);
    root = t.root;
    await assert.rejects(dump({ pid: root, imagesDir: dir, progress: false }), (e: Error) => {
      assert.match(e.message, new RegExp(`^task ${t.task} is in cgroup namespace cgroup:\\[\\d+\\], the tree's root ${root} in cgroup:\\[\\d+\\]: only one cgroup namespace per tree is supported$`));
      return true;
    });
    assert.ok(isAlive(root) && isAlive(t.task), 'the tree runs on');
  } finally {
    if (root > 0) {
      try {
        process.kill(-root, 'SIGKILL');
      } catch {
        // gone
      }
      await killAndWait(root);
    }
    removeDir(dir);
  }
});

/** The v1 pids hierarchy's mount, where a thread can be moved alone, if this machine has one. */
const V1_PIDS = ['/sys/fs/cgroup/pids'].find((d) => existsSync(join(d, 'tasks')));

test('40 threads, one moved alone into a v1 cgroup: its core names a set of its own, every other thread the main thread\'s (the dump reads the cgroups\' thread lists)', { timeout: 60_000, skip: V1_PIDS === undefined ? 'no v1 pids hierarchy at /sys/fs/cgroup/pids' : false }, async () => {
  const dir = tempDir('kind-cgroup-threads');
  const name = `criu-ts-cg-threads-${process.pid}`;
  const cg = join(V1_PIDS as string, name);
  let s: Subject | undefined;
  try {
    s = await startSubject('threads', ['--threads', '40', '--fpu', '0', '--stack-kib', '64'], { pthread: true });
    const pid = s.pid;
    const tids = readdirSync(`/proc/${pid}/task`).map(Number).filter((t) => t !== pid);
    assert.ok(tids.length >= 39, `only ${tids.length} threads`);
    const moved = tids[Math.floor(tids.length / 2)] as number;
    mkdirSync(cg);
    writeFileSync(join(cg, 'tasks'), String(moved));
    await dump({ pid, imagesDir: dir, progress: false });
    assert.ok(await waitGone(pid), `pid ${pid} still exists after the dump`);
    const cgImg = readImage(join(dir, 'cgroup.img')).entries[0] as unknown as CgroupEntry;
    const setOf = (tid: number): number | undefined => (readImage(join(dir, `core-${tid}.img`)).entries[0] as unknown as CoreEntry).thread_core?.cg_set;
    const main = setOf(pid);
    for (const t of tids) if (t !== moved) assert.equal(setOf(t), main, `thread ${t}`);
    assert.notEqual(setOf(moved), main);
    const pids = cgImg.sets?.find((x) => x.id === setOf(moved))?.ctls?.find((m) => m.name === 'pids')?.path;
    assert.equal(pids, `${readFileSync(`/proc/self/cgroup`, 'utf8').match(/^\d+:pids:(.*)$/m)?.[1]?.replace(/\/$/, '') ?? ''}/${name}`);
  } finally {
    await killSubject(s);
    try {
      rmdirSync(cg);
    } catch {
      // never made, or gone
    }
    removeDir(dir);
  }
});
