/**
 * A Node.js HTTP server (`node -e`, http.createServer().listen(0, '127.0.0.1'))
 * checkpointed while idle and restored: the same pid answers an HTTP GET on
 * the same port, its request counter carried over. The client closes every
 * connection and the test waits until the server has dropped its side, so
 * no connection (only the listener) is open at dump time. With
 * --tcp-established, an idle keep-alive connection of ours survives too:
 * the next request goes over the same connection.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Agent, request } from 'node:http';
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
s.keepAliveTimeout = 600000;
s.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(process.argv[1] + '.tmp', String(s.address().port));
  fs.renameSync(process.argv[1] + '.tmp', process.argv[1]);
});`;

/**
 * One GET. Without an agent: on a fresh connection that the client closes
 * itself once the body is in. With a keep-alive agent: the connection stays.
 */
function get(port: number, agent?: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: agent ?? false }, (res) => {
      const via = res.socket.localPort;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (agent === undefined) res.socket.destroy();
        resolve(agent === undefined ? body : `${body} via ${String(via)}`);
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

/** Start the server; returns its pid and port. */
async function startServer(dir: string): Promise<{ pid: number; port: number }> {
  const portFile = join(dir, 'port');
  const child = spawn(process.execPath, ['-e', SERVER, portFile], { detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid;
  assert.ok(pid !== undefined);
  assert.ok(await waitFor(() => existsSync(portFile)), 'server listening');
  return { pid, port: Number(readFileSync(portFile, 'utf8')) };
}

test('a Node.js HTTP server answers on the same port after dump and restore', { timeout: STEP_TIMEOUT_MS }, async () => {
  const dir = tempDir('inet-node-http');
  const images = join(dir, 'img');
  let pid = 0;
  try {
    const srv = await startServer(dir);
    pid = srv.pid;
    const port = srv.port;
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
    const r = await restore({ imagesDir: images, progress: false });
    assert.equal(r.pid, pid);
    assert.ok(isAlive(pid));
    assert.equal(await get(port), `hello 2 from ${pid}`);
    assert.equal(await get(port), `hello 3 from ${pid}`);
  } finally {
    if (pid !== 0) await killAndWait(pid);
    removeDir(dir);
  }
});

test('--tcp-established: an idle keep-alive connection to a Node.js HTTP server carries the next request after restore', { timeout: STEP_TIMEOUT_MS }, async () => {
  const dir = tempDir('inet-node-keepalive');
  const images = join(dir, 'img');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let pid = 0;
  try {
    const srv = await startServer(dir);
    pid = srv.pid;
    const first = await get(srv.port, agent);
    const m = /^hello 1 from \d+ via (\d+)$/.exec(first);
    assert.ok(m, first);
    await dump({ pid, imagesDir: images, progress: false, tcpEstablished: true });
    assert.ok(await waitGone(pid), 'dump killed the server');
    assert.equal(fileEntries(images).filter((e) => e.type === 'INETSK' && e.isk?.state === 1).length, 1, 'the connection is dumped');
    await restore({ imagesDir: images, progress: false });
    // Same client port: the same connection, not a new one.
    assert.equal(await get(srv.port, agent), `hello 2 from ${pid} via ${m[1]}`);
  } finally {
    agent.destroy();
    if (pid !== 0) await killAndWait(pid);
    removeDir(dir);
  }
});
