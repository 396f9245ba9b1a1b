/**
 * crit's JSON building blocks against Python itself: json.dumps text,
 * quoted-printable names, base64 lines, IPv6 compression, int(s, 0), dev
 * numbers, and a parser that keeps big integers exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { isCriuTsError } from '../../src/errors.js';
import { parseJson, stringifyPy } from '../../src/images/json/index.js';
import type { JsonValue } from '../../src/images/json/index.js';
import {
  base64Lines, devString, flagsString, fromBase64, ipString, parseDev, parseFlags, parseIp, parsePyInt, quopriDecode, quopriEncode,
} from '../../src/images/json/pretty.js';

const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0 ? undefined : 'python3 not available';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return a / 4294967296;
  };
}

test('parseJson keeps integers exact and stringifyPy prints them back', () => {
  const text = '{"a": 18446744073709551615, "b": -9223372036854775808, "c": [1, 2.5, -0.001, 1e+300], "d": "x\\u00e9\\n", "e": {}, "f": [], "g": null, "h": true}';
  const v = parseJson(text);
  assert.equal((v as Record<string, JsonValue>)['a'], 18446744073709551615n);
  assert.equal((v as Record<string, JsonValue>)['b'], -9223372036854775808n);
  assert.equal(stringifyPy(v, false), '{"a": 18446744073709551615, "b": -9223372036854775808, "c": [1, 2.5, -0.001, 1e+300], "d": "x\\u00e9\\n", "e": {}, "f": [], "g": null, "h": true}');
  assert.equal(stringifyPy(v, true).split('\n')[1], '    "a": 18446744073709551615,');
  for (const bad of ['{', '{"a" 1}', '[1,]', '"\\x"', '01', '{"a": 1} x', '']) {
    assert.throws(() => parseJson(bad, 'in.json'), (e: unknown) => isCriuTsError(e) && e.code === 'EJSON' && e.message.startsWith('in.json: bad JSON at byte'));
  }
});

test('flags, dev, int(s, 0) and IP helpers', () => {
  assert.equal(flagsString('mmap.prot', 0), '');
  assert.equal(flagsString('mmap.prot', 7), 'PROT_READ | PROT_WRITE | PROT_EXEC');
  assert.equal(flagsString('pmap.flags', 0x16), 'PE_LAZY | PE_PRESENT | 0x10');
  assert.equal(flagsString('no.such', 1), undefined);
  assert.equal(parseFlags('pmap.flags', 'PE_LAZY | PE_PRESENT | 0x10'), 0x16n);
  assert.equal(parseFlags('pmap.flags', ''), 0n);
  assert.equal(devString((254 << 20) | 3, false), '254:3');
  assert.equal(parseDev('254:3', false), BigInt((254 << 20) | 3));
  assert.equal(devString(0x803, true), '8:3');
  assert.equal(parseDev('8:3', true), 0x803n);
  assert.equal(parsePyInt('0x1F'), 31n);
  assert.equal(parsePyInt(' -0o17 '), -15n);
  assert.equal(parsePyInt('1_000'), 1000n);
  assert.equal(parsePyInt('010'), undefined);
  assert.equal(parsePyInt('0xzz'), undefined);
  assert.equal(ipString([16777343]), '127.0.0.1');
  assert.deepEqual(parseIp('127.0.0.1'), [16777343]);
  assert.equal(fromBase64('!!'), undefined);
  assert.equal(base64Lines(Buffer.alloc(0)), '');
  assert.equal(base64Lines(Buffer.alloc(58)).split('\n').map((l) => l.length).join(','), '76,4,0');
});

test('quoted-printable, base64 and IPv6 text equal Python\'s for random inputs', { skip: hasPython }, () => {
  const r = rng(7);
  const special = [0x3d, 0x20, 0x09, 0x0a, 0x0d, 0x2e, 0x00, 0x7f, 0xff, 0x41];
  const blobs: Buffer[] = [];
  for (let i = 0; i < 600; i++) {
    const len = Math.floor(r() * (i % 3 === 0 ? 300 : 40));
    blobs.push(Buffer.from(Array.from({ length: len }, () => (r() < 0.5 ? special[Math.floor(r() * special.length)] ?? 0 : Math.floor(r() * 256)))));
  }
  const addrs: number[][] = [];
  for (let i = 0; i < 300; i++) {
    addrs.push(Array.from({ length: 4 }, () => (r() < 0.5 ? 0 : r() < 0.5 ? 0xffff0000 : Math.floor(r() * 2 ** 32))));
  }
  const py = `
import sys, json, quopri, base64, socket
from ipaddress import IPv6Address
d = json.load(sys.stdin)
out = {'qp': [], 'qpdec': [], 'b64': [], 'ip': []}
for h in d['blobs']:
    b = bytes.fromhex(h)
    out['qp'].append(quopri.encodestring(b).decode())
    out['qpdec'].append(quopri.decodestring(quopri.encodestring(b)).hex())
    out['b64'].append(base64.encodebytes(b).decode())
for w in d['addrs']:
    v = (socket.ntohl(w[0]) << 96) + (socket.ntohl(w[1]) << 64) + (socket.ntohl(w[2]) << 32) + socket.ntohl(w[3])
    out['ip'].append(IPv6Address(v).compressed)
json.dump(out, sys.stdout)
`;
  const res = spawnSync('python3', ['-c', py], { input: JSON.stringify({ blobs: blobs.map((b) => b.toString('hex')), addrs }), encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(res.status, 0, res.stderr);
  const want = JSON.parse(res.stdout) as { qp: string[]; qpdec: string[]; b64: string[]; ip: string[] };
  blobs.forEach((b, i) => {
    assert.equal(quopriEncode(b), want.qp[i], `quopri ${b.toString('hex')}`);
    // text-mode quoted-printable is not lossless (CR/LF), so compare with Python's decoder
    assert.equal(quopriDecode(quopriEncode(b)).toString('hex'), want.qpdec[i], `quopri decode ${b.toString('hex')}`);
    assert.equal(base64Lines(b), want.b64[i]);
  });
  addrs.forEach((a, i) => {
    assert.equal(ipString(a), want.ip[i], `ipv6 ${a.join(',')}`);
    assert.deepEqual(parseIp(want.ip[i] ?? ''), a.map((x) => x >>> 0));
  });
});
