/**
 * The user namespace kind (src/kinds/ns/user.ts): a task in a user
 * namespace of its own, cloned by a launcher that writes its maps as a
 * container runtime does (test/subjects/userns.c), is dumped with its maps
 * and its credentials as it sees them, and restored in a new user
 * namespace with the same maps, the namespaces it owned created inside it,
 * and every id, group and capability set back (the subject checks them
 * from inside); crit 3.17 reads the images. What is not done is refused
 * with one line, and the tree runs on.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import type { CoreEntry, TaskKobjIdsEntry, UsernsEntry } from '../../../src/images/messages.js';
import { isAlive, repoRoot, startSubject, type Subject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, rejectsOneLine, removeDir, tempDir, waitGone } from '../../lib/harness.js';
import { sameAsCrit, sameAsCritWithout } from '../files/round-trip.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

const TIMEOUT = { timeout: 120_000 };

// zdtm's uns flavour maps (test/zdtm/lib/ns.c): two extents each, host root not mapped.
const ZDTM_UID_MAP = '0:20000:20000,100000:200000:50000';
const ZDTM_GID_MAP = '0:400000:50000,50000:500000:100000';

const pick = (e: Record<string, unknown> | undefined, ...keys: string[]): unknown[] => keys.map((k) => e?.[k]);

const extents = (spec: string): { first: number; lower_first: number; count: number }[] =>
  spec.split(',').map((x) => x.split(':').map(Number)).map(([first = 0, lower_first = 0, count = 0]) => ({ first, lower_first, count }));

/**
 * Start, dump (checking the images with `look`), restore, and expect PASS
 * from inside. With `sibling`, the restore is the CLI's `restore -d
 * --restore-sibling` run by a caller that then waits for the root itself,
 * as zdtm's runner and runc do: the root must be that caller's child.
 */
async function roundTrip(args: string[], look: (dir: string, pid: number) => void, sibling = false): Promise<void> {
  const dir = tempDir('userns');
  let s: Subject | undefined;
  let restored: number | undefined;
  let caller: ChildProcess | undefined;
  try {
    s = await startSubject('userns', args, { launcher: true });
    const pid = s.pid;
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/user`), readlinkSync('/proc/self/ns/user'), 'the subject has a user namespace of its own');
    const r = await dump({ pid, imagesDir: dir, progress: false });
    for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
    look(dir, pid);
    let reaped: Promise<Record<string, number>> | undefined;
    if (sibling) {
      const run = siblingRestore(dir);
      caller = run.caller;
      const first = await run.first;
      assert.equal(first['code'], 0, `restore exit status (${dir}/restore.log)`);
      assert.equal(first['ppid'], first['me'], 'the caller is the parent of the restored root');
      restored = first['pid'] as number;
      reaped = run.second;
    } else {
      restored = (await restore({ imagesDir: dir, progress: false, verify: true })).pid;
    }
    assert.notEqual(readlinkSync(`/proc/${restored}/ns/user`), readlinkSync('/proc/self/ns/user'), 'restored in a user namespace of its own');
    s.pid = restored;
    const out = await s.terminateAndResult();
    assert.ok(out.ok, out.text);
    if (reaped) assert.deepEqual(await reaped, { waited: restored, status: 0 }, 'the caller reaped its child');
  } finally {
    caller?.kill('SIGKILL');
    if (restored !== undefined) await killAndWait(restored);
    s?.cleanup();
    removeDir(dir);
  }
}

/** `criu-ts restore -d --restore-sibling` from a Python caller that prints what it sees, then waitpid()s the root. */
function siblingRestore(dir: string): { caller: ChildProcess; first: Promise<Record<string, number>>; second: Promise<Record<string, number>> } {
  const pidfile = join(dir, 'root.pid');
  const script = [
    'import json, os, subprocess, sys',
    'r = subprocess.run(sys.argv[1:])',
    'pid = int(open(' + JSON.stringify(pidfile) + ').read().strip()) if r.returncode == 0 else 0',
    'st = open("/proc/%d/stat" % pid).read() if pid else ") x 0"',
    'print(json.dumps({"code": r.returncode, "pid": pid, "ppid": int(st[st.rindex(")") + 2:].split()[1]), "me": os.getpid()}), flush=True)',
    'w, status = os.waitpid(pid, 0) if pid else (0, 0)',
    'print(json.dumps({"waited": w, "status": status}), flush=True)',
  ].join('\n');
  const args = ['restore', '-D', dir, '-o', 'restore.log', '-v4', '--restore-sibling', '-d', '--pidfile', pidfile];
  const caller = spawn('/usr/bin/python3', ['-c', script, join(repoRoot(), 'bin', 'criu-ts'), ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: caller.stdout as Readable })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, number>> => JSON.parse(String((await lines.next()).value)) as Record<string, number>;
  const first = next();
  return { caller, first, second: first.then(next) };
}

function rootImages(dir: string): { ids: TaskKobjIdsEntry; inv: TaskKobjIdsEntry; core: CoreEntry } {
  const pstree = readImage(join(dir, 'pstree.img')).entries[0] as { pid: number };
  return {
    ids: readImage(join(dir, `ids-${pstree.pid}.img`)).entries[0] as unknown as TaskKobjIdsEntry,
    inv: (readImage(join(dir, 'inventory.img')).entries[0] as { root_ids: TaskKobjIdsEntry }).root_ids,
    core: readImage(join(dir, `core-${pstree.pid}.img`)).entries[0] as unknown as CoreEntry,
  };
}

test('a container-like tree (user namespace owning pid, uts, ipc and net namespaces; zdtm\'s maps) comes back with its maps, owners and ids', TIMEOUT, async () => {
  await roundTrip(['--uid-map', ZDTM_UID_MAP, '--gid-map', ZDTM_GID_MAP, '--ns', 'pid,uts,ipc,net', '--child', '1'], (dir) => {
    const { ids, inv, core } = rootImages(dir);
    assert.notEqual(ids.user_ns_id, inv.user_ns_id);
    const userns = readImage(join(dir, `userns-${ids.user_ns_id}.img`)).entries[0] as UsernsEntry;
    assert.deepEqual(userns, { uid_map: extents(ZDTM_UID_MAP), gid_map: extents(ZDTM_GID_MAP) });
    // As CRIU writes them: ids as the task sees them (root inside, host 20000/400000 outside).
    const c = core.thread_core?.creds;
    assert.deepEqual([c?.uid, c?.euid, c?.suid, c?.fsuid, c?.gid, c?.egid, c?.sgid, c?.fsgid], [0, 0, 0, 0, 0, 0, 0, 0]);
    const child = readImage(join(dir, 'core-2.img')).entries[0] as unknown as CoreEntry;
    assert.deepEqual([child.thread_core?.creds?.uid, child.thread_core?.creds?.gid, child.thread_core?.creds?.groups], [1000, 1000, [1000, 2000]]);
    sameAsCrit(dir, [`userns-${ids.user_ns_id}.img`, 'ids-1.img', 'ids-2.img']);
  });
});

test('--restore-sibling: the container-like tree\'s root is born the caller\'s child, its maps written before its first exec', TIMEOUT, async () => {
  await roundTrip(['--uid-map', ZDTM_UID_MAP, '--gid-map', ZDTM_GID_MAP, '--ns', 'pid,uts,ipc,net', '--child', '1'], () => undefined, true);
});

test('"unshare -U --map-root-user" shape: one task, root mapped to root, setgroups denied, a capability dropped', TIMEOUT, async () => {
  await roundTrip(['--uid-map', '0:0:1,1:100000:65536', '--deny', '1', '--drop-cap', '10'], (dir) => {
    const { ids } = rootImages(dir);
    const file = `userns-${ids.user_ns_id}.img`;
    const userns = readImage(join(dir, file)).entries[0] as UsernsEntry;
    assert.equal(userns.setgroups_deny, true, 'setgroups "deny" kept in criu-ts\'s own field');
    // crit 3.17 (and CRIU) skip the field they do not know.
    sameAsCritWithout(dir, file, ['setgroups_deny']);
  });
});

test('a non-root task inside (uid 1000, groups) with uts and time namespaces owned by its user namespace (the clock a day ahead goes on), a memfd, a bound unix socket and a ghost file it owns', TIMEOUT, async () => {
  await roundTrip(['--uid-map', ZDTM_UID_MAP, '--gid-map', ZDTM_GID_MAP, '--ns', 'uts,time', '--uid', '1000', '--gid', '1000', '--groups', '1000:3000:60000', '--files', '1'], (dir) => {
    const { core } = rootImages(dir);
    const c = core.thread_core?.creds;
    assert.deepEqual([c?.uid, c?.gid, c?.groups], [1000, 1000, [1000, 3000, 60000]]);
    // Owners of what it made, as it sees them (host 21000:401000), as CRIU writes them.
    const ghost = readdirSync(dir).find((f) => f.startsWith('ghost-file-')) as string;
    assert.deepEqual(pick(readImage(join(dir, ghost)).entries[0], 'uid', 'gid'), [1000, 1000]);
    const usk = readImage(join(dir, 'files.img')).entries.find((e) => e['type'] === 'UNIXSK') as { usk: { file_perms: Record<string, unknown> } };
    assert.deepEqual(pick(usk.usk.file_perms, 'uid', 'gid'), [1000, 1000]);
    const memfd = readdirSync(dir).find((f) => f.startsWith('memfd')) as string;
    assert.deepEqual(pick(readImage(join(dir, memfd)).entries[0], 'uid', 'gid'), [1000, 1000]);
  });
});

/** Dump `pid` and expect a refusal matching `why`; the subject then runs on and passes. */
async function refused(args: string[], why: (pid: number) => RegExp): Promise<void> {
  const dir = tempDir('userns-refused');
  const s = await startSubject('userns', args, { launcher: true });
  try {
    await rejectsOneLine(dump({ pid: s.pid, imagesDir: dir, progress: false }), 'EUNSUPPORTED', why(s.pid));
    assert.ok(isAlive(s.pid), 'the tree runs on');
    const out = await s.terminateAndResult();
    assert.ok(out.ok, out.text);
  } finally {
    s.cleanup();
    removeDir(dir);
  }
}

test('a user namespace nested in the tree\'s is refused with one line naming the task', TIMEOUT, async () => {
  await refused(['--ns', 'pid', '--nested', '1'], () => /^task \d+ \(userns\S*\) is in a user namespace of its own \(user:\[\d+\]\) inside the tree's .*: nested user namespaces are not supported$/);
});

test('a namespace of the root owned by another user namespace than its own is refused', TIMEOUT, async () => {
  await refused(['--outer-uts', '1'], (pid) => new RegExp(`^task ${pid} \\(userns\\S*\\) has a uts namespace \\(uts:\\[\\d+\\]\\) owned by another user namespace than its own`));
});

test('several tasks in a user namespace of their own but in criu-ts\'s pid namespace are refused', TIMEOUT, async () => {
  await refused(['--child', '1'], (pid) => new RegExp(`^task ${pid} \\(userns\\S*\\) is in a user namespace of its own but in criu-ts's pid namespace, with 2 tasks`));
});
