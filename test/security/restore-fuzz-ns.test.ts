/**
 * Restore fuzzer over trees in namespaces of their own (issue 9, point 6):
 * uts+ipc with SysV objects, a pid namespace with threads, a zombie and a
 * helper, a net namespace with addresses, routes and sockets, a mount
 * namespace under a private root (its own pid, uts, ipc and net too), and a
 * user namespace owning pid, uts, ipc and net. Each dump is copied and
 * damaged one way per copy, mostly in the images that describe the
 * namespaces (mountpoints, netdev, ifaddr/route, ipc*, utsns, userns maps,
 * pstree and ids, inventory), string fields included (mount points, roots,
 * device and host names set to "", "..", climbing, huge or with control
 * characters, a number set to the pid of a live process outside the tree:
 * ours, init), and restored through the command line with --verify.
 *
 * Each case must end within its time in success or one Error line with a
 * non-zero exit; afterwards nothing may be left in the system we run in:
 * no process below us (the restored tree is killed after a success), no
 * restore stub, not one mount line changed in our mount namespace, no
 * network device, nft table or cgroup directory named by the dump, and no
 * new file in the subject's directories, the images dir or the restore's
 * working directory. A net namespace left behind would need a task, a
 * mount or an fd to live: the first two are checked, and the third died
 * with criu-ts.
 *
 * `npm test` runs CRIU_TS_FUZZ_NS_CASES (default 25) cases; 2,000 is the
 * nightly-sized run; CRIU_TS_FUZZ_SEED replays one; a failure names its case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/api/index.js';
import { startSubject, type StartOptions } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import { assertOneErrorLine, mutate, ourDescendants, rng } from './fuzz-lib.js';
import { leftovers, namesIn, tree, world } from '../lib/leftovers.js';
import { removeDir, strayStubs, tempDir, useSubjectCleanup, waitGone, reapIfOurs } from '../e2e/helpers.js';

const TOTAL = Number(process.env['CRIU_TS_FUZZ_NS_CASES'] ?? 25);
const SEED = Number(process.env['CRIU_TS_FUZZ_SEED'] ?? 20261207);
/** A namespace tree's restore (ip, nft, tar of a tmpfs) on a loaded machine; a hang is what this catches. */
const CASE_TIMEOUT_MS = 90_000;

// zdtm's uns flavour maps (test/zdtm/lib/ns.c), as test/kinds/ns/user.test.ts.
const UID_MAP = '0:20000:20000,100000:200000:50000';
const GID_MAP = '0:400000:50000,50000:500000:100000';

/** The images that say what the namespaces are, and which tasks are where. */
const NS_IMAGES = /^(mountpoints|netdev|ifaddr|route6?|rule|netns|ipcns|utsns|userns|pstree|ids|inventory|ip6?tables|nftables|tmpfs-dev|sysctl)|^core-/;

interface NsSubject {
  label: string;
  name: string;
  args: (root: string) => string[];
  opts: (root: string) => StartOptions;
  /** restored under --root (its own mount namespace) */
  root?: boolean;
}

const SUBJECTS: readonly NsSubject[] = [
  { label: 'ipc-ns (uts+ipc, SysV shm/sem/msg, a child)', name: 'ipc-ns', args: () => [], opts: () => ({}) },
  { label: 'pid-ns (threads, sessions, a zombie)', name: 'pid-ns', args: () => [], opts: () => ({ pthread: true, launcher: true }) },
  { label: 'net-ns (addresses, a route, sysctls, sockets)', name: 'net-ns', args: () => [], opts: () => ({}) },
  {
    label: 'mnt-ns (tmpfs, binds, peers, a slave, proc, devpts, mqueue; own pid/uts/ipc/net)', name: 'mnt-ns', root: true,
    args: (root) => ['--root', root], opts: (root) => ({ static: true, launcher: true, workDir: join(root, 'w') }),
  },
  {
    label: 'userns (maps, owning pid/uts/ipc/net, a child)', name: 'userns',
    args: () => ['--uid-map', UID_MAP, '--gid-map', GID_MAP, '--ns', 'pid,uts,ipc,net', '--child', '1'], opts: () => ({ launcher: true }),
  },
];

/** A private root for mnt-ns, as test/kinds/ns/mnt.test.ts makes it. */
function makeRoot(): string {
  const root = tempDir('fuzz-ns-root');
  for (const d of ['proc', 't', 't2', 't3', 'dev', 'ro', 'mq', 'w', 'data/sub', 'n', 'n2', 'o1', 'o2']) mkdirSync(join(root, d), { recursive: true });
  return root;
}

const { subjects, dirs } = useSubjectCleanup();

test(`restore fuzzer over namespaces: ${TOTAL} damaged dumps of ${SUBJECTS.length} trees in namespaces of their own end in success (verified) or one error line, leaving nothing in ours`, { timeout: 4 * 60 * 60_000 }, async () => {
  const r = rng(SEED);
  const tally = { restored: 0, refused: 0 };
  const perSubject = Math.ceil(TOTAL / SUBJECTS.length);
  for (const sub of SUBJECTS) {
    const root = sub.root === true ? makeRoot() : undefined;
    if (root !== undefined) dirs.push(root);
    const s = await startSubject(sub.name, sub.args(root ?? ''), sub.opts(root ?? ''));
    subjects.push(s);
    await new Promise((res) => setTimeout(res, 50));
    const base = tempDir('fuzz-ns-base');
    dirs.push(base);
    const d = await dump({ pid: s.pid, imagesDir: base, progress: false });
    for (const p of d.pids) assert.ok(await waitGone(p), `${sub.label}: task ${p} still there after the dump`);
    const baseNames = namesIn(base, /^(netdev|cgroup|inventory|ifaddr|route)/);
    const ourDirs = [s.workDir, base, ...(root === undefined ? [] : [root])];
    const filesBefore = ourDirs.map(tree);
    // A launcher that outlived its subject is not a case's leftover.
    const already = new Set(ourDescendants());
    // Zombies below us are reaped (the guardian's shell, gone once the restore said done, ends as ours).
    const below = (): number[] => ourDescendants().filter((p) => !already.has(p) && !reapIfOurs(p));
    for (let i = 0; i < perSubject; i++) {
      const dir = tempDir('fuzz-ns-case');
      const cwd = tempDir('fuzz-ns-cwd');
      const caseNo = `${sub.name} #${i}`;
      try {
        cpSync(base, dir, { recursive: true });
        // A pid may also become one of a live process outside the tree (ours, init): pstree pids against ns pids.
        const what = mutate(dir, r, { prefer: (f) => NS_IMAGES.test(f), preferShare: 0.8, strings: true, numbers: [process.pid, 1] });
        const skipChecksums = r() < 0.9;
        const imagesBefore = tree(dir);
        const pidfile = join(cwd, 'restored.pid');
        const names = new Set([...baseNames, ...namesIn(dir, /^(netdev|cgroup|inventory|ifaddr|route)/)]);
        const label = `case ${caseNo} (seed ${SEED}): ${what}${skipChecksums ? ' (--skip-checksums)' : ''}`;
        const before = world();
        const args = ['restore', '-d', '-D', dir, '--verify', '--pidfile', pidfile, ...(root === undefined ? [] : ['--root', root]), ...(skipChecksums ? ['--skip-checksums'] : [])];
        const res = await runCli('criu-ts', args, { cwd, timeoutMs: CASE_TIMEOUT_MS });
        assert.notEqual(res.code, null, `${label}: restore did not finish in ${CASE_TIMEOUT_MS} ms`);
        if (res.code === 0) {
          tally.restored++;
          assert.ok(existsSync(pidfile), `${label}: restored, but no pidfile`);
        } else {
          tally.refused++;
          assertOneErrorLine(label, res.stderr);
          // A failed restore leaves no process: whatever is below us now was left by it (the guardian, done, may take a moment to go).
          let left = below();
          for (let t = 0; t < 300 && left.length > 0; t++) {
            await new Promise((res2) => setTimeout(res2, 10));
            left = below();
          }
          const show = left.map((p) => { try { return `${p} ${readFileSync(`/proc/${p}/stat`, 'latin1').split(' ').slice(1, 4).join(' ')} ${readFileSync(`/proc/${p}/cmdline`, 'latin1').replace(/\0/g, ' ')}`; } catch { return `${p}`; } });
          assert.deepEqual(show, [], `${label}: processes left behind by a failed restore: ${res.stderr}`);
        }
        // The restored tree (after a success) goes: every process below us.
        for (let t = 0; t < 50; t++) {
          const left = below();
          if (left.length === 0) break;
          for (const p of left) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
          for (const p of left) await waitGone(p, 5000);
        }
        assert.deepEqual(below(), [], `${label}: the restored tree would not go`);
        assert.deepEqual(strayStubs(), [], `${label}: restore stubs left behind`);
        assert.deepEqual(leftovers(before, { dirs: [...ourDirs, dir, cwd], names }), [], `${label}: left in our namespaces:\n${res.stderr}`);
        assert.deepEqual(ourDirs.map(tree), filesBefore, `${label}: files left in the subject's directories`);
        // stats-restore is the one file a restore writes there, as CRIU's does.
        assert.deepEqual(tree(dir).filter((f) => f !== 'stats-restore'), imagesBefore.filter((f) => f !== 'stats-restore'), `${label}: files left in the images dir`);
        assert.deepEqual(tree(cwd), res.code === 0 ? ['restored.pid'] : [], `${label}: files left in the restore's working dir`);
      } finally {
        removeDir(dir);
        removeDir(cwd);
      }
    }
  }
  process.stdout.write(`# restore fuzzer over namespaces (seed ${SEED}): ${JSON.stringify(tally)}\n`);
  assert.ok(tally.refused > 0, 'no case was refused: the mutations did nothing');
});
