/**
 * The network lock with iptables (--network-lock iptables): CRIU's two
 * DROP rules per connection (all but packets marked 0xc114) from the
 * moment the dump reaches it until the restored tree resumes; a failed dump
 * or one that leaves the tree running takes them out again; check's
 * has_ipt_legacy says what iptables-save here is.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { check, dump, restore } from '../../../src/api/index.js';
import { readImage } from '../../../src/images/index.js';
import { isAlive, startSubject } from '../../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitGone } from '../../e2e/helpers.js';
import { setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const works = spawnSync('iptables', ['-w', '-t', 'filter', '-S', 'INPUT'], { stdio: 'ignore' }).status === 0;
const skip = works ? false : 'no working iptables program';

/** Lock rules (INPUT/OUTPUT, the mark, DROP) on loopback: 127.0.0.1 in iptables, ::1 in ip6tables. */
function lockRules(v6 = false): string[] {
  const out = execFileSync(v6 ? 'ip6tables' : 'iptables', ['-w', '-t', 'filter', '-S'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter((l) => /-m mark ! --mark 0xc114/.test(l) && /-j DROP/.test(l) && l.includes(v6 ? '::1' : '127.0.0.1'));
}

/** The rules whose ports are those of `ports` (other runs on this machine may hold rules of their own). */
function rulesFor(ports: Set<number>, v6 = false): string[] {
  return lockRules(v6).filter((l) => [...l.matchAll(/--[sd]port (\d+)/g)].every((m) => ports.has(Number(m[1]))));
}

function portsOf(dir: string): Set<number> {
  const ports = new Set<number>();
  for (const e of readImage(join(dir, 'files.img')).entries) {
    const isk = e['isk'] as { proto: number; state: number; src_port: number; dst_port: number } | undefined;
    if (isk?.proto === 6 && isk.dst_port !== 0) {
      ports.add(isk.src_port);
      ports.add(isk.dst_port);
    }
  }
  return ports;
}

test('iptables lock: two rules per connection from dump to restore, then none; CRIU\'s method number', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  const dir = tempDir('inet-ipt-lock');
  const s = await startSubject('tcp-conn', []);
  try {
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, networkLock: 'iptables' });
    assert.ok(await waitGone(s.pid));
    assert.equal(readImage(join(dir, 'inventory.img')).entries[0]?.['network_lock_method'], 0);
    const ports = portsOf(dir);
    // One IPv4 and one IPv6 connection, both ends in the tree: each end locks its direction, 2 rules each.
    assert.equal(rulesFor(ports).length, 4, rulesFor(ports).join('\n'));
    assert.equal(rulesFor(ports, true).length, 4, rulesFor(ports, true).join('\n'));
    await restore({ imagesDir: dir, progress: false });
    assert.deepEqual(rulesFor(ports), []);
    assert.deepEqual(rulesFor(ports, true), []);
    assert.equal((await s.terminateAndResult(30_000)).text, 'PASS');
  } finally {
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('iptables lock: a failed dump and a dump that leaves the tree running take the rules away', { timeout: STEP_TIMEOUT_MS, skip }, async () => {
  const dir = tempDir('inet-ipt-lock-fail');
  const s = await startSubject('tcp-conn', []);
  try {
    let during: string[] = [];
    const before4 = new Set(lockRules());
    await assert.rejects(dump({
      pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, networkLock: 'iptables',
      notify: (e) => {
        if (e.point === 'post-dump') {
          during = lockRules().filter((l) => !before4.has(l));
          throw new Error('stop here');
        }
      },
    }), /stop here/);
    assert.ok(isAlive(s.pid));
    assert.equal(during.length, 4, `locked while the dump runs: ${during.join('\n')}`);
    const after = new Set(lockRules());
    assert.deepEqual(during.filter((l) => after.has(l)), []);
    await dump({ pid: s.pid, imagesDir: dir, progress: false, tcpEstablished: true, networkLock: 'iptables', leaveRunning: true });
    assert.deepEqual(rulesFor(portsOf(dir)), []);
    assert.deepEqual(rulesFor(portsOf(dir), true), []);
    // No marker of ours is left behind.
    const markers = existsSync('/run/criu-ts/net-lock') ? readdirSync('/run/criu-ts/net-lock') : [];
    assert.ok(!markers.some((m) => readFileSync(join('/run/criu-ts/net-lock', m), 'utf8').startsWith(`${process.pid}\n`)));
    assert.equal((await s.terminateAndResult(30_000)).text, 'PASS');
  } finally {
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('check has_ipt_legacy: yes exactly when an iptables-save here uses the legacy backend', async () => {
  const legacy = (bin: string): boolean => {
    const r = spawnSync(bin, ['-V'], { encoding: 'utf8' });
    return r.status === 0 && !r.stdout.includes('nf_tables');
  };
  const want = (legacy('iptables-save') || legacy('iptables-legacy-save')) && (legacy('ip6tables-save') || legacy('ip6tables-legacy-save'));
  assert.equal((await check({ feature: 'has_ipt_legacy' })).ok, want);
});
