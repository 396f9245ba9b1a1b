/**
 * Pre-dumps through the page server (issue 15, points 2 and 3 together):
 * `pre-dump --page-server` and `dump --page-server` chains, the page
 * server keeping the chain on its side (its own `parent` links, PE_PARENT
 * entries as CRIU writes them), the dumper keeping only its tracking
 * record. mem-dirty checks every page against its model after the restore.
 * Also: a page server refuses a PE_PARENT entry its parent does not hold;
 * --auto-dedup on the server; --tls refused; and, with CRIU_BIN, our pre-dumps and dump
 * into CRIU 4.2's page server (CRIU cannot pre-dump on this kernel: no
 * soft-dirty), in one shared directory as zdtm's --page-server --pre runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startSubject } from '../lib/subjects.js';
import { memDirtyPhase, pagesIn, startPageServer, type PageServer } from '../lib/page-server.js';
import { runCli } from '../lib/run.js';
import { tempDir, useSubjectCleanup, waitGone } from './helpers.js';

const CRIU = process.env['CRIU_BIN'];
const noCriu = CRIU === undefined || CRIU === '' ? 'set CRIU_BIN to a CRIU 4.2 binary to run this' : !existsSync(CRIU) ? `CRIU_BIN=${CRIU} does not exist` : false;
const PS = 4096n;
const R_PAGES = 256n;

const { subjects, dirs } = useSubjectCleanup();

function mkdirs(base: string, ...names: string[]): string[] {
  return names.map((n) => {
    const d = join(base, n);
    mkdirSync(d, { recursive: true });
    return d;
  });
}

test('pre-dump, pre-dump, dump through criu-ts page-server in other dirs: the server keeps the chain, the restore is right', { timeout: 180_000 }, async () => {
  const s = await startSubject('mem-dirty', []);
  subjects.push(s);
  // Two "hosts": the dumper's dirs and the page server's, each a chain of its own.
  const [l1, l2, lf] = mkdirs(s.workDir, 'local/pre1', 'local/pre2', 'local/final') as [string, string, string];
  const [r1, r2, rf] = mkdirs(s.workDir, 'remote/pre1', 'remote/pre2', 'remote/final') as [string, string, string];
  const via = (ps: PageServer): string[] => ['--page-server', '--address', '127.0.0.1', '--port', String(ps.port)];

  let ps = await startPageServer(r1);
  let d = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', l1, ...via(ps)]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal((await ps.exit).code, 0);
  assert.ok(!readdirSync(l1).some((f) => f.startsWith('pagemap-') || f.startsWith('pages-')), 'no pages in the dumper\'s dir');
  assert.ok(existsSync(join(r1, `pagemap-${s.pid}.img`)));

  const p1 = await memDirtyPhase(s, 1);
  ps = await startPageServer(r2, ['--prev-images-dir', '../pre1']);
  d = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', l2, '--prev-images-dir', '../pre1', ...via(ps)]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal((await ps.exit).code, 0);
  assert.equal(readlinkSync(join(r2, 'parent')), '../pre1', 'the server links its parent');
  const inR = pagesIn(r2, s.pid, p1.rAddr, p1.rAddr + R_PAGES * PS);
  assert.equal(inR.copied, p1.written, `pages of R sent again by the second pre-dump (${JSON.stringify(inR)})`);
  assert.equal(inR.parent, Number(R_PAGES) - p1.written - 4 - 8, 'the rest is PE_PARENT on the server');

  const p2 = await memDirtyPhase(s, 2);
  ps = await startPageServer(rf, ['--prev-images-dir', '../pre2']);
  d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', lf, '--prev-images-dir', '../pre2', '--track-mem', ...via(ps)]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal((await ps.exit).code, 0);
  assert.ok(await waitGone(s.pid));
  const finR = pagesIn(rf, s.pid, p2.rAddr, p2.rAddr + R_PAGES * PS);
  assert.equal(finR.copied, p2.written + 2, `pages of R sent by the final dump (${JSON.stringify(finR)})`);
  // The migration's last step: the dumper's images beside the server's chain.
  for (const f of readdirSync(lf)) if (f !== 'parent') cpSync(join(lf, f), join(rf, f));
  const r = await runCli('criu-ts', ['restore', '-d', '-D', rf]);
  assert.equal(r.code, 0, r.stderr);
  const res = await s.terminateAndResult();
  assert.ok(res.ok, res.text);
});

test('a page server refuses pages said to be in a parent it does not hold; --auto-dedup frees the parent\'s copies', { timeout: 120_000 }, async () => {
  const remote = tempDir('ps-noparent');
  dirs.push(remote);
  const ps = await startPageServer(remote);
  await new Promise<void>((res) => {
    const c = connect(ps.port, '127.0.0.1', () => {
      const dst = (4242n << 8n) | 1n;
      const open = Buffer.alloc(32);
      open.writeUInt32LE(4, 0); // OPEN2
      open.writeBigUInt64LE(dst, 24);
      const add = Buffer.alloc(32);
      add.writeUInt32LE((1 << 16) | 6, 0); // ADD_F, PE_PARENT
      add.writeBigUInt64LE(4n, 8);
      add.writeBigUInt64LE(0x10000n, 16);
      add.writeBigUInt64LE(dst, 24);
      c.write(Buffer.concat([open, add]));
      c.on('error', () => undefined);
      c.on('close', () => res());
      c.resume();
    });
  });
  const served = await ps.exit;
  assert.equal(served.code, 1);
  assert.match(served.stderr, /said to be in the parent images, which do not hold them/);
  assert.equal(served.stderr.trim().split('\n').length, 1, served.stderr);
  assert.deepEqual(readdirSync(remote), [], 'nothing kept');
  // No TLS: asking for it is refused in one line, never answered with plain TCP.
  const tls = await runCli('criu-ts', ['page-server', '-D', remote, '--port', '0', '--tls']);
  assert.equal(tls.code, 1);
  assert.match(tls.stderr.trim(), /^criu-ts: --tls is not supported yet/);
  assert.equal(tls.stderr.trim().split('\n').length, 1, tls.stderr);

  // --auto-dedup: a second pre-dump through the server punches what it sends again out of the first.
  const s = await startSubject('mem-dirty', []);
  subjects.push(s);
  const [l1, l2] = mkdirs(s.workDir, 'l1', 'l2') as [string, string];
  const [r1, r2] = mkdirs(s.workDir, 'r1', 'r2') as [string, string];
  let p = await startPageServer(r1);
  let d = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', l1, '--page-server', '--address', '127.0.0.1', '--port', String(p.port)]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal((await p.exit).code, 0);
  await memDirtyPhase(s, 1);
  const blocks = (dir: string): bigint => readdirSync(dir).filter((n) => /^pages-\d+\.img$/.test(n))
    .reduce((n, f) => n + statSync(join(dir, f), { bigint: true }).blocks, 0n);
  const before = blocks(r1);
  p = await startPageServer(r2, ['--prev-images-dir', '../r1', '--auto-dedup']);
  d = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', l2, '--prev-images-dir', '../l1', '--page-server', '--address', '127.0.0.1', '--port', String(p.port)]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal((await p.exit).code, 0);
  assert.ok(blocks(r1) < before, `the parent lost the pages sent again (${before} -> ${blocks(r1)} blocks)`);
});

test('CRIU 4.2\'s page server takes our pre-dumps and dump in one dir (zdtm --page-server --pre 2); the chain restores', { timeout: 180_000, skip: noCriu }, async () => {
  const criu = CRIU as string;
  const s = await startSubject('mem-dirty', []);
  subjects.push(s);
  const [d1, d2, d3] = mkdirs(s.workDir, '1', '2', '3') as [string, string, string];
  const theirs = async (dir: string, run: (port: number) => Promise<void>): Promise<void> => {
    const port = 20000 + (process.pid % 20000);
    const p = spawn(criu, ['page-server', '-D', dir, '--address', '127.0.0.1', '--port', String(port), '--status-fd', '3', '-o', 'ps.log', '-v4'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    const done = new Promise<number | null>((res) => p.on('close', res));
    await new Promise<void>((res) => {
      const ready = p.stdio[3];
      if (ready && 'once' in ready) ready.once('data', () => res());
      else res();
    });
    await run(port);
    assert.equal(await done, 0, `CRIU's page server: ${readFileSync(join(dir, 'ps.log'), 'utf8').split('\n').filter((l) => /Error/.test(l)).join('; ')}`);
  };
  const via = (port: number): string[] => ['--page-server', '--address', '127.0.0.1', '--port', String(port)];
  await theirs(d1, async (port) => {
    const c = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', d1, ...via(port)]);
    assert.equal(c.code, 0, c.stderr);
  });
  await memDirtyPhase(s, 1);
  await theirs(d2, async (port) => {
    const c = await runCli('criu-ts', ['pre-dump', '-t', String(s.pid), '-D', d2, '--prev-images-dir', '../1', '--track-mem', ...via(port)]);
    assert.equal(c.code, 0, c.stderr);
  });
  assert.ok(pagesIn(d2, s.pid, 0n, 1n << 62n).parent > 0, 'PE_PARENT entries in the pagemap CRIU wrote');
  await memDirtyPhase(s, 2);
  await theirs(d3, async (port) => {
    const c = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', d3, '--prev-images-dir', '../2', '--track-mem', ...via(port)]);
    assert.equal(c.code, 0, c.stderr);
  });
  assert.ok(await waitGone(s.pid));
  const r = await runCli('criu-ts', ['restore', '-d', '-D', d3, '--verify']);
  assert.equal(r.code, 0, r.stderr);
  const res = await s.terminateAndResult();
  assert.ok(res.ok, res.text);
});
