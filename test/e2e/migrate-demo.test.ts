/**
 * `npm run demo:migrate` (issue 15, point 5), in a smaller size: a 64 MiB
 * server streaming ticks to a client on another "host" is moved from net
 * namespace A to B with two pre-dumps through a page server on B, a final
 * dump with --tcp-established, the network lock and --lazy-pages (no page
 * copied while frozen: the last dirty pages stay in the frozen server on
 * A), and a lazy restore on B whose daemon takes them from the dump on A
 * (`lazy-pages --page-server`, CRIU's remote lazy restore) and the rest
 * from the pre-dumps on B. The demo exits 0 only when the client's connection survived with no
 * tick lost or repeated, the server found every page of its memory right,
 * and the same pid runs in B's net namespace. A second run is interrupted
 * (SIGINT) in the middle of its pre-dumps and must leave nothing: no
 * namespace, no process, no work dir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../lib/subjects.js';

const DEMO = join(repoRoot(), 'dist', 'demo', 'migrate.js');
const missing = ['gcc', 'ip', 'nsenter', 'unshare', 'nft'].find((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).error);
const skip = missing ? `${missing} is not installed` : false;

interface Run { code: number | null; out: string; pid: number }

function runDemo(args: string[], interruptOn?: RegExp): Promise<Run> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [DEMO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (interruptOn && !sent && interruptOn.test(out)) {
        sent = true;
        p.kill('SIGINT');
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('close', (code) => res({ code, out, pid: p.pid ?? 0 }));
  });
}

/** What a run must not leave: its namespaces, its work dir, its server. */
function leftovers(r: Run): string[] {
  const left: string[] = [];
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  if (ns.includes(`criu-ts-migrate-${r.pid}-`)) left.push(`net namespaces criu-ts-migrate-${r.pid}-*`);
  const work = /files in (\S+);/.exec(r.out)?.[1];
  if (work && existsSync(work)) left.push(`work dir ${work}`);
  const server = Number(/server pid (\d+)/.exec(r.out)?.[1] ?? 0);
  if (server > 0) {
    try {
      const stat = spawnSync('cat', [`/proc/${server}/cmdline`], { encoding: 'utf8' }).stdout ?? '';
      if (stat.includes('migrate-server')) left.push(`server pid ${server}`);
    } catch {
      // gone
    }
  }
  return left;
}

test('demo:migrate --size 64M --iterations 2: the client connection survives the move to host B', { skip, timeout: 300_000 }, async () => {
  const r = await runDemo(['--size', '64M', '--iterations', '2']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /The connection survived: the server \(pid 1 in its namespace\) now runs on host B as pid (\d+)/);
  // Every pre-dump printed its pages; the final dump copies none of the server's memory while it is frozen.
  const sent = [...r.out.matchAll(/(\d+) pages \([\d.]+ MiB\) sent to host B, (\d+) unchanged/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
  assert.equal(sent.length, 2, r.out);
  assert.ok((sent[0]?.[0] ?? 0) >= 16384, `pre-dump 1 sends all 64 MiB: ${r.out}`);
  const fin = /(\d+) pages \([\d.]+ MiB\) written since the last pre-dump stay in the frozen server on A for B to fetch, (\d+) are on B already/.exec(r.out);
  assert.ok(fin, r.out);
  const [lazy, onB] = [Number(fin[1]), Number(fin[2])];
  assert.ok(lazy > 0 && lazy < 16384 / 4 && onB > 16384 / 2, `the final dump leaves only what was written since on A (${lazy}), the rest is on B (${onB})`);
  assert.match(r.out, /final freeze \d+ ms/);
  // B's daemon asked the dump on A for those pages (and only those: the rest came from B's pre-dumps); the dump then ended.
  const served = /the dump on host A served (\d+) pages to B's daemon and ended/.exec(r.out);
  assert.ok(served, r.out);
  assert.ok(Number(served[1]) >= lazy && Number(served[1]) < lazy + onB / 4, `A served the dirty pages (${served[1]}), not the memory B holds: ${r.out}`);
  // A pre-dump freezes the server only to plan its copy and protect its memory; the copy runs while it runs.
  const first = /server frozen (\d+) ms, pages copied in (\d+) ms \(while it ran\)/.exec(r.out);
  assert.ok(first && Number(first[1]) < Number(first[2]), `pre-dump 1 froze the server for less than its copy took: ${first?.[0] ?? r.out}`);
  assert.match(r.out, /0 missing or repeated, 0 bad pages/);
  assert.deepEqual(leftovers(r), []);
});

test('demo:migrate interrupted with SIGINT during its pre-dumps leaves no namespace, process or file', { skip, timeout: 120_000 }, async () => {
  const r = await runDemo(['--size', '16M', '--iterations', '3'], /Pre-dump 2 of 3/);
  assert.equal(r.code, 130, r.out);
  assert.match(r.out, /SIGINT, cleaning up/);
  assert.deepEqual(leftovers(r), []);
});
