/**
 * criu-ts killed in the middle of `dump -R --tcp-established` (issue 9,
 * point 3): a TCP echo server (subject tcp-echo) with a client outside the
 * dump, the test's own socket. The dump locks the connection (nftables or
 * iptables, in turn) and puts the server's socket in TCP repair mode while
 * it reads it; criu-ts is then killed (CRIU_TS_FAULT=@K:SIG, SIGKILL,
 * SIGTERM and SIGINT in turn) at passes spread over the whole run.
 *
 * After each kill: the server is alive, untraced, with its masks and maps as
 * before; the lock of the killed run is gone (its nftables table, or every
 * iptables rule naming the connection's ports); and the connection carries
 * data both ways (the client's bytes come back). The server fails on any
 * error of its socket (a recv in repair mode is EPERM), so at the end its
 * PASS says no call of it ever saw one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { isAlive, startSubject } from '../lib/subjects.js';
import { runCli, withFault } from '../lib/run.js';
import { passesOf, settled, snapshot, spread } from '../lib/kill-walk.js';
import { waitFor } from '../e2e/helpers.js';

const NFT = ['/usr/sbin/nft', '/sbin/nft'].find((p) => existsSync(p));
const IPT = spawnSync('iptables', ['-w', '-t', 'filter', '-S', 'INPUT'], { stdio: 'ignore' }).status === 0;
const skip = NFT ? false : 'no nft program (nftables)';
const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT'] as const;

/** Send `msg` and wait for it to come back whole (TCP retransmits what a lock held back). */
async function echo(sock: Socket, msg: string, timeoutMs = 30_000): Promise<boolean> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (b: Buffer): void => {
      got += b.toString();
      if (got.length >= msg.length) done(got === msg);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    function done(ok: boolean): void {
      clearTimeout(timer);
      sock.off('data', onData);
      resolve(ok);
    }
    sock.on('data', onData);
    sock.write(msg);
  });
}

/** The nftables table a run's log says it made ("network locked: table inet CRIU-..."). */
function tableOf(log: string): string | undefined {
  return /network locked: table (inet CRIU-[A-Za-z0-9_-]+)/.exec(log)?.[1];
}

function hasTable(t: string): boolean {
  return execFileSync(NFT as string, ['list', 'tables'], { encoding: 'utf8' }).split('\n').includes(`table ${t}`);
}

/** iptables rules naming `port` (the lock's rules carry both ports of the connection). */
function iptRulesOf(port: number): string[] {
  if (!IPT) return [];
  const out = execFileSync('iptables', ['-w', '-t', 'filter', '-S'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter((l) => l.includes('0xc114') && new RegExp(`--[sd]port ${port}\\b`).test(l));
}

test('criu-ts killed during dump -R --tcp-established: the connection runs on both ways, no lock left', { skip, timeout: 900_000 }, async () => {
  const s = await startSubject('tcp-echo', []);
  const work = mkdtempSync('/tmp/criu-ts-killed-tcp-');
  let sock: Socket | undefined;
  try {
    const portFile = join(s.workDir, 'port');
    assert.ok(await waitFor(() => existsSync(portFile)));
    const port = Number(readFileSync(portFile, 'utf8').trim());
    const client = connect(port, '127.0.0.1');
    sock = client;
    await new Promise<void>((res, rej) => client.once('connect', res).once('error', rej));
    const localPort = client.localPort as number;
    assert.ok(await echo(client, 'hello'), 'no echo before the walk');
    const before = snapshot(s.pid);
    const base = ['dump', '-t', String(s.pid), '-D', work, '-R', '--tcp-established', '-o', 'dump.log', '-v4'];
    const r0 = await withFault('count', () => runCli('criu-ts', [...base, '--network-lock', 'nftables']));
    assert.equal(r0.code, 0, r0.stderr);
    assert.ok(await echo(client, 'after a whole dump'), 'no echo after a dump');
    const names = passesOf(r0.stderr);
    // The connection is locked and its socket read in repair mode between
    // dump.memory and dump.files: every pass from there to the end (the
    // images, the release), and a few before, when nothing is locked yet.
    const lockedFrom = names.indexOf('dump.memory') + 1;
    assert.ok(lockedFrom > 0, names.join(' '));
    const plan = [...spread(1, lockedFrom - 1, 4, new Set()), ...Array.from({ length: names.length - lockedFrom + 1 }, (_, j) => lockedFrom + j)];
    let ok = 0;
    for (const [i, k] of plan.entries()) {
      const sig = SIGNALS[i % SIGNALS.length] as string;
      const method = IPT && i % 3 === 2 ? 'iptables' : 'nftables';
      const what = `kill ${i + 1}/${plan.length} at pass ${k} (${names[k - 1]}) with ${sig}, --network-lock ${method}`;
      rmSync(join(work, 'dump.log'), { force: true });
      const r = await withFault(`@${k}:${sig}`, () => runCli('criu-ts', [...base, '--network-lock', method]));
      assert.notEqual(r.code, 0, `${what}: the dump did not fail\n${r.stderr}`);
      assert.match(r.stderr, /criu-ts: interrupted/, `${what}: no word from the guardian\n${r.stderr}`);
      assert.ok(isAlive(s.pid), `${what}: the server died\n${r.stderr}`);
      assert.equal(await settled(s.pid, before), before, `${what}: threads (TracerPid, SigBlk) or maps changed`);
      const log = existsSync(join(work, 'dump.log')) ? readFileSync(join(work, 'dump.log'), 'utf8') : '';
      const t = tableOf(log);
      if (t !== undefined) assert.ok(!hasTable(t), `${what}: ${t} is left\n${r.stderr}`);
      assert.deepEqual(iptRulesOf(localPort), [], `${what}: iptables rules of the connection are left`);
      assert.ok(await echo(client, `ping ${i + 1}`), `${what}: the connection does not carry data both ways\n${r.stderr}`);
      ok++;
    }
    assert.equal(ok, plan.length);
    client.end();
    client.destroy();
    sock = undefined;
    const res = await s.terminateAndResult(20_000);
    assert.ok(res.ok, res.text);
  } finally {
    sock?.destroy();
    s.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
});
