/**
 * A Node.js HTTP server (`node -e`, http.createServer().listen(0, '127.0.0.1'))
 * checkpointed while idle and restored: the same pid answers an HTTP GET on
 * the same port, its request counter carried over. The client closes every
 * connection and the test waits until the server has dropped its side, so
 * no connection (only the listener) is open at dump time.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { dump, restore } from '../../../src/api/index.js';
import { isAlive } from '../../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitFor, waitGone } from '../../e2e/helpers.js';
import { fileEntries, sameAsCritWithout, setUpRunner, STEP_TIMEOUT_MS } from './round-trip.js';

before(setUpRunner);

const SERVER = `
const http = require('http'), fs = require('fs');
let n = 0;
const s = http.createServer((q, r) => { n++; r.end('hello ' + n + ' from ' + process.pid); });
s.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(process.argv[1] + '.tmp', String(s.address().port));
  fs.renameSync(process.argv[1] + '.tmp', process.argv[1]);
});`;

/** One GET on a fresh connection that the client closes itself once the body is in. */
function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        res.socket.destroy();
        resolve(body);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function socketFds(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

test('a Node.js HTTP server answers on the same port after dump and restore', { timeout: STEP_TIMEOUT_MS }, async () => {
  const dir = tempDir('inet-node-http');
  const portFile = join(dir, 'port');
  const images = join(dir, 'img');
  const child = spawn(process.execPath, ['-e', SERVER, portFile], { detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid;
  assert.ok(pid !== undefined);
  try {
    assert.ok(await waitFor(() => existsSync(portFile)), 'server listening');
    const port = Number(readFileSync(portFile, 'utf8'));
    const idle = socketFds(pid);
    assert.equal(await get(port), `hello 1 from ${pid}`);
    // The server's side of that connection must be gone: only the listener is dumped.
    assert.ok(await waitFor(() => socketFds(pid) === idle), 'server closed the connection');
    await dump({ pid, imagesDir: images, progress: false });
    assert.ok(await waitGone(pid), 'dump killed the server');
    const inet = fileEntries(images).filter((e) => e.type === 'INETSK').map((e) => e.isk);
    assert.equal(inet.length, 1);
    assert.equal(inet[0]?.state, 10);
    assert.equal(inet[0]?.src_port, port);
    assert.equal(inet[0]?.opts.reuseaddr, true, 'libuv sets SO_REUSEADDR on listeners');
    sameAsCritWithout(images, 'files.img', ['ttl', 'tos', 'pktinfo', 'tcp_opts']);
    const r = await restore({ imagesDir: images, detach: true, progress: false });
    assert.equal(r.pid, pid);
    assert.ok(isAlive(pid));
    assert.equal(await get(port), `hello 2 from ${pid}`);
    assert.equal(await get(port), `hello 3 from ${pid}`);
  } finally {
    await killAndWait(pid);
    removeDir(dir);
  }
});
