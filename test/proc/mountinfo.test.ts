import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { parseMountinfo, parseMountinfoLine } from '../../src/proc/index.js';

test('our own mount table', () => {
  const m = parseMountinfo(process.pid);
  const root = m.find((x) => x.mountpoint === '/');
  assert.ok(root);
  const proc = m.find((x) => x.mountpoint === '/proc');
  assert.equal(proc?.fstype, 'proc');
  assert.ok(m.every((x) => x.mntId > 0 && Number.isInteger(x.devMajor)));
});

test('escapes and propagation in a private mount namespace', async (t) => {
  if (!existsSync('/usr/bin/unshare')) return t.skip('unshare(1) missing');
  const base = mkdtempSync('/tmp/criu-ts-mnt-');
  const a = `${base}/a dir`;
  const b = `${base}/b\tdir`;
  // A shared tmpfs with a space in its path and source, and a slave bind of it.
  const script = `mkdir -p "${a}" "${b}" && mount -t tmpfs -o size=1m "my src" "${a}" && mount --make-shared "${a}" && mount --bind "${a}" "${b}" && mount --make-slave "${b}" && echo ok && exec sleep 30`;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      child.stdout.once('data', (d: Buffer) => resolve(d.toString()));
      child.once('exit', (c) => reject(new Error(`unshare exited ${c}: ${err}`)));
    });
    assert.equal(line.trim(), 'ok');
    const pid = child.pid ?? 0;
    const m = parseMountinfo(pid);
    const ma = m.find((x) => x.mountpoint === a);
    const mb = m.find((x) => x.mountpoint === b);
    assert.ok(ma && mb, 'both mounts found with decoded names');
    assert.equal(ma.fstype, 'tmpfs');
    assert.equal(ma.source, 'my src');
    assert.match(ma.superOptions, /size=1024k/);
    assert.ok(ma.shared > 0);
    assert.equal(mb.master, ma.shared);
    assert.equal(mb.shared, 0);
    assert.equal(mb.root, '/');
    assert.equal(mb.devMinor, ma.devMinor);
  } finally {
    child.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  }
});

test('optional fields parse', () => {
  const m = parseMountinfoLine('36 35 98:0 /mnt1 /mnt/parent\\040x rw,noatime master:1 propagate_from:2 unbindable - ext3 /dev/root rw,errors=continue', 'f');
  assert.equal(m.root, '/mnt1');
  assert.equal(m.mountpoint, '/mnt/parent x');
  assert.deepEqual([m.master, m.propagateFrom, m.unbindable, m.shared], [1, 2, true, 0]);
  assert.equal(m.superOptions, 'rw,errors=continue');
  assert.deepEqual([m.devMajor, m.devMinor], [98, 0]);
});
