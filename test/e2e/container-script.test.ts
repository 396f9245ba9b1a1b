/**
 * A container made by hand, as a small runtime script would make it
 * (issue 13's own proof): `unshare` gives busybox's httpd its own pid, mount,
 * net, uts and ipc namespaces; it is pid 1 there, under a private root (a
 * bind of a rootfs, pivot_root) with a tmpfs holding the page it serves, a
 * bind mount inside that and /proc; `ip` gives it an eth0 whose peer is on a
 * bridge here. It is dumped (killed), restored with --root and
 * --veth-pair eth0=PEER@BRIDGE, and answers over its veth again: the tmpfs
 * page, the bound page, its host name, pid 1 inside.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, tempDir, waitFor, waitGone } from './helpers.js';
import { hasIpNetns, makeRootfs, staticBusybox, which } from './containers.js';

const busybox = staticBusybox();
const unshare = which('unshare', ['/usr/bin/unshare', '/bin/unshare']);
const skip = 'missing' in busybox ? busybox.missing : unshare === undefined ? 'unshare is not installed (util-linux)' : !hasIpNetns() ? 'ip is not available' : false;

const n = process.pid % 200;
const bridge = `ctsbr${n}`;
const peer = `ctsh${n}`;
const net = `10.199.${n}`;
const cleanups: (() => void | Promise<void>)[] = [];

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

function fetch(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // No keep-alive, and our end closed as soon as the answer is in: a
    // half-closed connection would, once the server is killed at dump, leave
    // its end an orphan in FIN-WAIT that holds the container's net namespace,
    // and so the host's veth end, for up to a minute.
    const req = get({ host: `${net}.2`, port: 8080, path, timeout: 3000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        res.socket.destroy();
        resolve(body);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
  });
}

async function answers(path: string, want: string): Promise<boolean> {
  for (const end = Date.now() + 15_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    try {
      if ((await fetch(path)).trim() === want) return true;
    } catch {
      // not yet
    }
  }
  return false;
}

/** The one child of `pid` (unshare --fork's: pid 1 of the new namespace), once it runs httpd. */
async function initOf(pid: number): Promise<number> {
  let child = 0;
  const ok = await waitFor(() => {
    try {
      child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0] ?? 0);
      return child > 0 && readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('httpd');
    } catch {
      return false;
    }
  }, 15_000);
  assert.ok(ok, 'the container never started httpd');
  return child;
}

test('a container made with unshare and ip (pid, mnt, net, uts, ipc; private root, tmpfs, bind, veth) answers over its veth after dump and restore', { skip, timeout: 180_000 }, async () => {
  const root = tempDir('ctr-root');
  const dir = tempDir('ctr-img');
  cleanups.push(() => removeDir(root), () => removeDir(dir));
  makeRootfs(root, (busybox as { path: string }).path);
  for (const d of ['www', 'srv', 'old']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'srv', 'b.html'), 'hello-bind\n');
  execFileSync('mknod', ['-m', '666', join(root, 'dev', 'null'), 'c', '1', '3']);
  const script = [
    'set -e',
    `mount --bind ${root} ${root}`,
    `mount -t tmpfs -o size=4m www ${root}/www`,
    `echo hello-tmpfs > ${root}/www/index.html`,
    `mkdir ${root}/www/bound`,
    `mount --bind ${root}/srv ${root}/www/bound`,
    'hostname ctsbox',
    `cd ${root}`,
    'pivot_root . old',
    '/bin/busybox umount -l /old',
    '/bin/busybox mount -t proc proc /proc',
    // Its stdio is its own, as a runtime's container's (ours would be on a mount it cannot see).
    'exec /bin/busybox httpd -f -p 8080 -h /www </dev/null >/dev/null 2>&1',
  ].join('\n');
  const u = spawn(unshare as string, ['--pid', '--mount', '--net', '--uts', '--ipc', '--fork', '--propagation', 'private', '/bin/sh', '-c', script], { stdio: 'ignore', detached: true });
  const upid = u.pid as number;
  u.unref();
  cleanups.push(() => killAndWait(upid));
  const init = await initOf(upid);
  cleanups.push(() => killAndWait(init));

  // The runtime's part: a bridge here, a veth pair with eth0 inside.
  ip('link', 'add', bridge, 'type', 'bridge');
  cleanups.push(() => void spawnSync('ip', ['link', 'del', bridge]));
  ip('addr', 'add', `${net}.1/24`, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  ip('link', 'add', peer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(init));
  ip('link', 'set', peer, 'master', bridge, 'up');
  const inside = (...args: string[]): void => void execFileSync('nsenter', ['-t', String(init), '-n', ...args], { stdio: 'ignore' });
  inside('ip', 'addr', 'add', `${net}.2/24`, 'dev', 'eth0');
  inside('ip', 'link', 'set', 'eth0', 'up');
  inside('ip', 'link', 'set', 'lo', 'up');
  assert.ok(await answers('/index.html', 'hello-tmpfs'), 'the container does not answer before the dump');
  assert.equal((await fetch('/bound/b.html')).trim(), 'hello-bind');

  const r = await dump({ pid: init, imagesDir: dir, progress: false });
  for (const p of r.pids) assert.ok(await waitGone(p), `task ${p} still there after the dump`);
  await assert.rejects(fetch('/index.html'), 'nothing answers while it is dumped');
  // The dead namespace's devices go in the kernel's own time: the old host end may still hold its name a moment.
  const stale = new RegExp(`^\\d+: ${peer}[@:]`, 'm');
  assert.ok(await waitFor(() => !stale.test(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })), 30_000), `${peer} of the dumped namespace is still there`);

  const res = await restore({ imagesDir: dir, progress: false, root, vethPairs: [{ inside: 'eth0', outside: peer, bridge }] });
  cleanups.push(() => killAndWait(res.pid));
  assert.ok(await answers('/index.html', 'hello-tmpfs'), 'the restored container does not serve its tmpfs page over the veth');
  assert.equal((await fetch('/bound/b.html')).trim(), 'hello-bind', 'the bind mount inside is back');
  const nspid = /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${res.pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
  assert.equal(nspid?.at(-1), '1', 'httpd is pid 1 of its namespace again');
  assert.equal(execFileSync('nsenter', ['-t', String(res.pid), '-u', 'hostname'], { encoding: 'utf8' }).trim(), 'ctsbox');
  for (const ns of ['mnt', 'net', 'uts', 'ipc', 'pid']) {
    assert.notEqual(readlinkSync(`/proc/${res.pid}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `the ${ns} namespace is its own`);
  }
});
