import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { readAuxv, readCmdline, readEnviron, readComm, readExe, readCwd, readRoot, readLoginuid, readOomScoreAdj, readPersonality, readNsIds, readCgroup, NS_NAMES, userShadowStackPossible } from '../../src/proc/index.js';
import { buildSubject } from '../lib/subjects.js';
import { startProcTarget, infoNum } from '../lib/proc-target.js';
import type { ProcTarget } from '../lib/proc-target.js';

let t: ProcTarget;
before(async () => { t = await startProcTarget(); });
after(() => t.subject.cleanup());

const AT_PAGESZ = 6n;
const AT_ENTRY = 9n;

test('small per-process files', () => {
  const pid = t.subject.pid;
  const exe = buildSubject('proc-target', { pthread: true });
  assert.deepEqual(readCmdline(pid), [exe, '--out', t.subject.outFile]);
  assert.ok(readEnviron(pid).some((e) => e.startsWith('PATH=')));
  assert.equal(readComm(pid), 'pt (x) y');
  assert.equal(readComm(pid, infoNum(t, 'thread')), 'pt (x) y');
  assert.equal(readExe(pid), exe);
  assert.equal(readCwd(pid), t.subject.workDir);
  assert.equal(readRoot(pid), '/');
  assert.equal(readOomScoreAdj(pid), 123);
  assert.equal(readLoginuid(pid), readLoginuid(process.pid));
  assert.equal(readPersonality(pid), 0);
});

test('auxv pairs', () => {
  const auxv = new Map(readAuxv(t.subject.pid));
  assert.equal(auxv.get(AT_PAGESZ), 4096n);
  assert.ok((auxv.get(AT_ENTRY) ?? 0n) > 0n);
});

test('namespace ids and cgroups', () => {
  const ns = readNsIds(t.subject.pid);
  assert.deepEqual(ns, readNsIds(process.pid));
  for (const n of NS_NAMES) assert.ok(ns[n] > 0, n);
  const cg = readCgroup(t.subject.pid);
  assert.ok(cg.length > 0);
  assert.ok(cg.every((l) => l.path.startsWith('/')));
});

test('user shadow stacks: said impossible only where cpuinfo lacks user_shstk, and then no task has one', () => {
  const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'))?.[1];
  const possible = userShadowStackPossible();
  assert.equal(possible, flags === undefined || flags.split(' ').includes('user_shstk'));
  assert.equal(userShadowStackPossible(), possible, 'read once, the same answer');
  if (possible) return;
  for (const pid of readdirSync('/proc').filter((d) => /^[0-9]+$/.test(d))) {
    let status = '';
    try {
      status = readFileSync(`/proc/${pid}/status`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    const features = /^x86_Thread_features:(.*)$/m.exec(status)?.[1] ?? '';
    assert.ok(!features.split(/\s+/).includes('shstk'), `task ${pid} has a shadow stack though cpuinfo lacks user_shstk`);
  }
});
