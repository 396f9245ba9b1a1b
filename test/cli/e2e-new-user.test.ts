/**
 * Issue 3 acceptance, as a new user would try it: their own small C program
 * (no criu-ts test library), started detached from a shell with setsid,
 * survives `criu-ts dump -t PID -D DIR -v4 -o dump.log` then
 * `criu-ts restore -D DIR -d --pidfile F -v4 -o restore.log`: same pid,
 * same memory (checksum, address space), and it carries on counting from
 * where it was instead of starting over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../lib/subjects.js';
import { runCli } from '../lib/run.js';
import {
  buildProgram, imageModes, killAndWait, removeDir, tempDir, waitFor, waitGone, useE2eHarness,
} from '../e2e/helpers.js';

useE2eHarness();

interface CounterLine {
  count: number;
  pid: number;
  sum: string;
  ok: boolean;
}

/** Every complete line of the program's output; a malformed line fails the test (offset or data damage). */
function readLines(out: string): CounterLine[] {
  const text = readFileSync(out, 'utf8');
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete.split('\n').filter((l) => l !== '').map((l) => {
    const m = /^count=(\d+) pid=(\d+) sum=([0-9a-f]{16}) (ok|CHANGED)$/.exec(l);
    assert.ok(m, `unexpected output line ${JSON.stringify(l)}`);
    return { count: Number(m[1]), pid: Number(m[2]), sum: m[3] ?? '', ok: m[4] === 'ok' };
  });
}

/**
 * Address space without the kernel's per-boot special mappings, with
 * neighbours that only differ in their history merged (the kernel keeps a
 * RELRO page that was once writable apart from its read-only neighbour; a
 * restore maps both at once and the kernel may merge them: same memory).
 */
function mapsOf(pid: number): string[] {
  const merged: { start: bigint; end: bigint; perms: string; off: bigint; file: string }[] = [];
  for (const l of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$/.exec(l);
    if (!m || /^\[(vdso|vvar|vvar_vclock|vsyscall)\]$/.test(m[7] ?? '')) continue;
    const v = { start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3] ?? '', off: BigInt(`0x${m[4]}`), file: `${m[5]} ${m[6]} ${m[7]}` };
    const prev = merged.at(-1);
    const inode = m[6] ?? '0';
    if (prev && prev.end === v.start && prev.perms === v.perms && prev.file === v.file
      && (inode === '0' || prev.off + (prev.end - prev.start) === v.off)) prev.end = v.end;
    else merged.push(v);
  }
  return merged.map((v) => `${v.start.toString(16)}-${v.end.toString(16)} ${v.perms} ${v.off.toString(16)} ${v.file}`);
}

test('a user\'s own program, started with setsid from a shell, survives dump and restore -d', { timeout: 120_000 }, async () => {
  const prog = buildProgram('user-counter');
  const work = tempDir('e2e-user');
  const images = join(work, 'images');
  const out = join(work, 'counter.out');
  let pid = 0;
  try {
    // Exactly what the issue asks for: a background job of a shell, in its own session.
    // ($! is the program itself: a background job of a non-interactive shell is no group leader, so setsid execs without forking.)
    pid = Number(execFileSync('sh', ['-c', `mkdir ${images} && setsid ${prog} </dev/null >${out} 2>&1 & echo $!`], { cwd: work, encoding: 'utf8' }).trim());
    assert.ok(await waitFor(() => existsSync(out) && readLines(out).length >= 5, 20_000), 'program did not start printing');
    assert.equal(readLines(out)[0]?.pid, pid, 'the shell started the program itself');
    const mapsBefore = mapsOf(pid);

    const d = await runCli('criu-ts', ['dump', '-t', String(pid), '-D', images, '-v4', '-o', 'dump.log']);
    assert.equal(d.code, 0, `dump failed: ${d.stderr}`);
    assert.ok(await waitGone(pid), `pid ${pid} still exists after the dump`);
    const before = readLines(out);
    const last = before.at(-1)?.count ?? -1;
    assert.ok(existsSync(join(images, 'dump.log')), 'dump.log is in the images dir');
    for (const { name, mode } of imageModes(images)) assert.equal(mode, 0o600, `${name} mode ${mode.toString(8)}`);

    const pidfile = join(work, 'restored.pid');
    const r = await runCli('criu-ts', ['restore', '-D', images, '-d', '--pidfile', pidfile, '-v4', '-o', 'restore.log']);
    assert.equal(r.code, 0, `restore failed: ${r.stderr}`);
    assert.ok(existsSync(join(images, 'restore.log')), 'restore.log is in the images dir');
    assert.equal(readFileSync(pidfile, 'utf8'), String(pid), 'pidfile names the same pid');
    assert.ok(isAlive(pid), `restored ${pid} is not running`);
    assert.deepEqual(mapsOf(pid), mapsBefore, 'same address space after restore');

    // It carries on: 10 more lines (0.5 s at 50 ms; generous deadline for a loaded CI).
    assert.ok(await waitFor(() => (readLines(out).at(-1)?.count ?? 0) >= last + 10, 30_000), `counter stuck after restore (last before: ${last})`);
    const lines = readLines(out);
    lines.forEach((l, i) => assert.equal(l.count, i, `line ${i} says count=${l.count}: no restart, no gap, no repeat`));
    for (const l of lines) {
      assert.equal(l.pid, pid, 'same pid all along');
      assert.equal(l.sum, lines[0]?.sum, 'buffer checksum unchanged');
      assert.ok(l.ok, `buffer changed at count=${l.count}`);
    }
  } finally {
    if (pid > 0) await killAndWait(pid);
    removeDir(work);
  }
});
