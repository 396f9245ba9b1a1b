/**
 * The uts and ipc namespace kinds (src/kinds/ns). The ipc-ns subject runs in
 * namespaces of its own with SysV objects and a child; here: its images are
 * CRIU's (read back by crit-ts and by CRIU's crit), a restore brings every
 * object back in a fresh namespace and leaves ours alone, and the
 * SysV segments of criu-ts's own ipc namespace (left in place and attached
 * again; refused when marked for removal or gone at restore), and the
 * refusal of a task nested in a uts namespace of its own inside the tree.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import type { IpcMsgEntry, IpcSemEntry, IpcShmEntry, IpcVarEntry, MmEntry, TaskKobjIdsEntry, UtsnsEntry } from '../../../src/images/messages.js';
import { isCriuTsError } from '../../../src/errors.js';
import { isAlive, startSubject } from '../../lib/subjects.js';
import type { Subject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, tempDir, waitTreeGone } from '../../e2e/helpers.js';
import { finishSubject, hasCrit, waitSleeping } from '../../lib/harness.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const VMA_AREA_SYSVIPC = 1 << 10;

test('a task in uts+ipc namespaces of its own: names, sysctls, SysV shm/sem/msg and attachments come back in a new namespace', { timeout: 120_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('ipc-ns');
  const ourIpc = readlinkSync('/proc/self/ns/ipc');
  const ourHost = hostname();
  try {
    s = await startSubject('ipc-ns');
    const pid = s.pid;
    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);

    const ids = readImage(join(dir, `ids-${pid}.img`)).entries[0] as unknown as TaskKobjIdsEntry;
    const inv = readImage(join(dir, 'inventory.img')).entries[0] as unknown as { root_ids: TaskKobjIdsEntry };
    assert.notEqual(ids.ipc_ns_id, inv.root_ids.ipc_ns_id, 'the task had an ipc namespace of its own');
    const uts = readImage(join(dir, `utsns-${ids.uts_ns_id}.img`)).entries[0] as unknown as UtsnsEntry;
    assert.deepEqual({ ...uts }, { nodename: 'criu-ts-ipc-ns', domainname: 'ipc.example' });
    const v = readImage(join(dir, `ipcns-var-${ids.ipc_ns_id}.img`)).entries[0] as unknown as IpcVarEntry;
    assert.equal(v.msg_ctlmnb, 32000);
    assert.equal(v.sem_ctls?.length, 4);
    const shm = readImage(join(dir, `ipcns-shm-${ids.ipc_ns_id}.img`));
    const segs = shm.entries as unknown as IpcShmEntry[];
    assert.equal(segs.length, 3, 'segments A, B and C');
    assert.ok(segs.every((e) => e.in_pagemaps === true), 'pages in pagemap-shmem images, as CRIU 4.2');
    const b = segs.find((e) => e.desc.key === 0x1b1b);
    assert.ok(b, 'segment B by its key');
    assert.equal(b.desc.mode & 0o777, 0o604);
    const pm = readImage(join(dir, `pagemap-shmem-${b.desc.id}.img`)).entries;
    assert.deepEqual(pm.slice(1).map((e) => [e['vaddr'], e['nr_pages']]), [[0n, 2n]], 'both pages of B');
    const sem = readImage(join(dir, `ipcns-sem-${ids.ipc_ns_id}.img`));
    assert.equal((sem.entries[0] as unknown as IpcSemEntry).nsems, 3);
    assert.deepEqual([0, 1, 2].map((i) => sem.extras[0]?.readUInt16LE(2 * i)), [1, 7, 42]);
    const msg = readImage(join(dir, `ipcns-msg-${ids.ipc_ns_id}.img`)).entries[0] as unknown as IpcMsgEntry;
    assert.deepEqual([msg.qnum, msg.qbytes, msg.desc.key], [3, 8000, 0x3e5]);
    const mm = readImage(join(dir, `mm-${pid}.img`)).entries[0] as unknown as MmEntry;
    const att = (mm.vmas ?? []).filter((x) => (x.status & VMA_AREA_SYSVIPC) !== 0);
    assert.equal(att.length, 3, 'A twice and C attached in the root');

    if (hasCrit()) {
      // CRIU's own decoder reads every namespace image.
      for (const f of readdirSync(dir).filter((n) => /^(utsns|ipcns-(var|sem|msg))-/.test(n))) {
        execFileSync('crit', ['decode', '-i', join(dir, f)], { stdio: ['ignore', 'ignore', 'pipe'] });
      }
    }

    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, pid);
    assert.ok(isAlive(pid));
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/ipc`), ourIpc, 'restored in a new ipc namespace');
    assert.equal(hostname(), ourHost, 'our host name is untouched');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await finishSubject(s, dir);
  }
});

test('a SysV shm segment of criu-ts\'s own ipc namespace marked for removal is refused at dump with one line; the task runs on', { timeout: 60_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('ipc-host');
  try {
    s = await startSubject('ipc-ns', ['--host-ns', '1']);
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, new RegExp(`^task ${s?.pid}: mapping 0x[0-9a-f]+: SysV shm segment \\d+ of criu-ts's own ipc namespace is marked for removal \\(IPC_RMID\\): it ends with its last attachment`));
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.ok(isAlive(s.pid));
  } finally {
    await finishSubject(s, dir);
  }
});

/** The id of the SysV segment task `pid` has attached (its maps name it /SYSV<key> with the id as inode). */
function attachedSegment(pid: number): number {
  const m = /^\S+ \S+ \S+ \S+ (\d+)\s+\/SYSV/m.exec(execFileSync('cat', [`/proc/${pid}/maps`], { encoding: 'utf8' }));
  assert.ok(m, `task ${pid} has no SysV attachment`);
  return Number(m[1]);
}

test('a kept SysV shm segment of criu-ts\'s own ipc namespace: left in place by the dump, attached again at restore (as CRIU); refused at restore once removed', { timeout: 90_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('ipc-host-kept');
  let id: number | undefined;
  try {
    s = await startSubject('ipc-ns', ['--host-ns', '2']);
    id = attachedSegment(s.pid);
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    const mm = readImage(join(dir, `mm-${s.pid}.img`)).entries[0] as unknown as MmEntry;
    assert.ok((mm.vmas ?? []).some((v) => (v.status & VMA_AREA_SYSVIPC) !== 0 && Number(v.shmid) === id), 'the attachment is recorded by the segment id');
    assert.ok(!readdirSync(dir).some((n) => n.startsWith('ipcns-')), 'no ipc namespace is saved');
    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, s.pid);
    assert.equal(attachedSegment(s.pid), id, 'the very segment');
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
    id = undefined; // the subject removed it
  } finally {
    await finishSubject(s, dir);
    if (id !== undefined) spawnIpcrm(id);
  }

  // Once the segment is gone, the images cannot bring it back: refused, nothing left.
  let t: Subject | undefined;
  const dir2 = tempDir('ipc-host-gone');
  try {
    t = await startSubject('ipc-ns', ['--host-ns', '2']);
    const gone = attachedSegment(t.pid);
    await dump({ pid: t.pid, imagesDir: dir2, progress: false });
    assert.deepEqual(await waitTreeGone(dir2), []);
    spawnIpcrm(gone);
    await assert.rejects(restore({ imagesDir: dir2, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.match(e.message, new RegExp(`^task ${t?.pid}: SysV shm segment ${gone} attached at 0x[0-9a-f]+: no such segment in criu-ts's ipc namespace`));
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    assert.ok(!isAlive(t.pid), 'nothing left of the refused restore');
  } finally {
    await finishSubject(t, dir2);
  }
});

function spawnIpcrm(id: number): void {
  try {
    execFileSync('ipcrm', ['-m', String(id)], { stdio: 'ignore' });
  } catch {
    // gone already
  }
}

test('a task nested in a uts namespace of its own inside the tree is refused at dump, naming it', { timeout: 60_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('uts-nested');
  try {
    s = await startSubject('ipc-ns', ['--nested-uts', '1']);
    await assert.rejects(dump({ pid: s.pid, imagesDir: dir, progress: false }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, /^task \d+ \(ipc-ns\) is in a uts namespace of its own \(uts:\[\d+\]\) inside the tree's \(uts:\[\d+\]\): nested uts namespaces are not supported$/);
      return true;
    });
    assert.ok(isAlive(s.pid));
  } finally {
    await finishSubject(s, dir);
  }
});

test('`unshare --uts --ipc` around a plain program: dumped with its host name, restored in new namespaces, ours untouched', { timeout: 60_000 }, async () => {
  const child = spawn('unshare', ['--uts', '--ipc', 'sh', '-c', 'hostname ns-sleeper && exec sleep 60'], { stdio: 'ignore', detached: true });
  const pid = child.pid as number;
  child.unref();
  const dir = tempDir('unshare-uts-ipc');
  const ours = { uts: readlinkSync('/proc/self/ns/uts'), ipc: readlinkSync('/proc/self/ns/ipc'), host: hostname() };
  try {
    await waitSleeping(pid);
    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, pid);
    for (const ns of ['uts', 'ipc'] as const) assert.notEqual(readlinkSync(`/proc/${pid}/ns/${ns}`), ours[ns], `restored in a ${ns} namespace of its own`);
    const name = execFileSync('nsenter', ['-t', String(pid), '-u', 'hostname'], { encoding: 'utf8' }).trim();
    assert.equal(name, 'ns-sleeper');
    assert.equal(hostname(), ours.host);
  } finally {
    await killAndWait(pid);
    removeDir(dir);
  }
});
