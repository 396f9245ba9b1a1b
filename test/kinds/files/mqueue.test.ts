/**
 * POSIX message queues (src/kinds/files/mqueue.ts, kinds/ns/ipc-mqueue.ts):
 * the mqueue subject in both shapes goes through dump + restore in
 * test/e2e/subjects.test.ts; here: a dump that leaves the tree running
 * finds every message back in place (reading a queue receives and sends
 * back), the images CRIU's crit decodes and crit-ts shows our fields, and a
 * queue of criu-ts's ipc namespace removed between dump and restore stops
 * the restore with one line and nothing left behind; criu-ts killed while
 * a queue's messages are out of it loses none (kinds/ns/mqueue-keeper.ts).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import type { FileEntry, IpcVarEntry } from '../../../src/images/messages.js';
import { mqUnlink } from '../../../src/sys/index.js';
import { isAlive, startSubject, type Subject } from '../../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds } from '../../e2e/helpers.js';
import { finishSubject, hasCrit, removeDir, passesAfterRestore, rejectsOneLine, strayStubs, tempDir, waitTreeGone } from '../../lib/harness.js';
import { runCli, withFault } from '../../lib/run.js';
import { settled, snapshot } from '../../lib/kill-walk.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

for (const args of [[], ['--ipc-ns', '1']]) {
  test(`mqueue ${args.join(' ') || '(our ipc namespace)'}: a dump with leaveRunning leaves every message in its place and order`, { timeout: 60_000 }, async () => {
    const dir = tempDir('mqueue-leave');
    const again = tempDir('mqueue-leave2');
    let s: Subject | undefined;
    try {
      s = await startSubject('mqueue', args);
      await dump({ pid: s.pid, imagesDir: dir, progress: false, leaveRunning: true });
      // And a second time: the first read sent everything back as it was.
      await dump({ pid: s.pid, imagesDir: again, progress: false, leaveRunning: true });
      await passesAfterRestore(s);
    } finally {
      await finishSubject(s, dir);
      removeDir(again);
    }
  });
}

test('mqueue in an ipc namespace of its own: CRIU\'s crit decodes the images, crit-ts shows every queue and message', { timeout: 60_000 }, async () => {
  const dir = tempDir('mqueue-images');
  let s: Subject | undefined;
  try {
    s = await startSubject('mqueue', ['--ipc-ns', '1']);
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    const files = readImage(join(dir, 'files.img')).entries as unknown as FileEntry[];
    const mq = files.filter((f) => f.ext?.mqueue !== undefined).map((f) => f.ext?.mqueue);
    assert.equal(mq.length, 4, 'four descriptions: a twice, b twice');
    const a = mq.filter((m) => m?.name === `criu-ts-mq-a-${s?.pid}`);
    assert.deepEqual(a.map((m) => m?.where), [1, 1], 'a: a queue of the tree\'s namespace, by name');
    const b = mq.filter((m) => m?.where === 2);
    assert.equal(b.length, 2, 'b: unlinked');
    const holder = b.find((m) => m?.queue !== undefined);
    assert.ok(holder, 'one entry of b holds its contents');
    assert.deepEqual(holder.queue?.messages?.map((m) => m.prio), [7, 3]);
    assert.ok(b.every((m) => m?.queue_file === b[0]?.queue_file), 'both entries point at the same queue');
    const varImg = readdirSync(dir).find((n) => n.startsWith('ipcns-var-'));
    assert.ok(varImg);
    const v = readImage(join(dir, varImg)).entries[0] as unknown as IpcVarEntry;
    const names = (v.mqueues ?? []).map((q) => q.name).sort();
    assert.deepEqual(names, [`criu-ts-mq-a-${s.pid}`, `criu-ts-mq-c-${s.pid}`]);
    const qa = v.mqueues?.find((q) => q.name.startsWith('criu-ts-mq-a-'));
    assert.deepEqual(qa?.messages?.map((m) => [m.prio, m.data.toString()]), [[5, 'a5'], [1, 'a1'], [1, 'a1b'], [0, '']]);
    if (hasCrit()) {
      for (const f of ['files.img', varImg]) execFileSync('crit', ['decode', '-i', join(dir, f)], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    const shown = await runCli('crit-ts', ['decode', '-i', join(dir, varImg)]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /"mqueues"/);
    const r = await restore({ imagesDir: dir, progress: false });
    assert.equal(r.pid, s.pid);
    await passesAfterRestore(s);
  } finally {
    await finishSubject(s, dir);
  }
});

test('a queue of criu-ts\'s ipc namespace removed between dump and restore: one line naming it, nothing left', { timeout: 60_000 }, async () => {
  const dir = tempDir('mqueue-gone');
  let s: Subject | undefined;
  try {
    s = await startSubject('mqueue', []);
    const pid = s.pid;
    await dump({ pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    mqUnlink(`criu-ts-mq-a-${pid}`);
    await rejectsOneLine(restore({ imagesDir: dir, progress: false }), 'ERESTORE', new RegExp(`cannot open POSIX message queue /criu-ts-mq-a-${pid} \\(a queue of criu-ts's ipc namespace, left in place at dump: was it removed\\?\\)`));
    assert.equal(isAlive(pid), false, 'no task left');
    assert.deepEqual(strayStubs(), []);
  } finally {
    await finishSubject(s, dir);
  }
});

/** Our children (we are a subreaper: a killed criu-ts's children come to us) whose command line holds `text`. */
function running(text: string): number[] {
  const r = spawnSync('pgrep', ['-P', String(process.pid), '-f', text], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l !== '').map(Number);
}

test('criu-ts killed (SIGKILL, SIGTERM) while a queue\'s messages are out of it: the keeper puts every one back, the target runs on as before', { timeout: 120_000 }, async () => {
  for (const sig of ['SIGKILL', 'SIGTERM']) {
    const dir = tempDir('mqueue-killed');
    let s: Subject | undefined;
    try {
      s = await startSubject('mqueue', ['--ipc-ns', '1']);
      const before = snapshot(s.pid);
      const r = await withFault(`@mqueue:${sig}`, () => runCli('criu-ts', ['dump', '-t', String(s?.pid), '-D', dir]));
      assert.notEqual(r.code, 0, `${sig}: the dump was killed\n${r.stderr}`);
      assert.ok(isAlive(s.pid), `${sig}: target alive`);
      assert.equal(await settled(s.pid, before), before, `${sig}: threads or maps changed\n${r.stderr}`);
      for (let t = 0; t < 500 && running('mqueueKeeperMain').length > 0; t++) await new Promise((res) => setTimeout(res, 10));
      assert.deepEqual(running('mqueueKeeperMain'), [], `${sig}: the keeper is done`);
      // The subject checks every queue: messages, priorities and order.
      await passesAfterRestore(s);
    } finally {
      await finishSubject(s, dir);
    }
  }
});
