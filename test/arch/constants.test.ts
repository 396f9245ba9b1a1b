/**
 * Kernel constants (syscall, ioctl and flag values) are declared once, in
 * src/sys (by topic: fcntl.ts, signals.ts, mman.ts, socket.ts, errno.ts,
 * ioctl.ts, ...), and CRIU's image field values in src/images/flags.ts:
 * a value declared twice can drift apart unseen. This reads every
 * `const NAME = <number>` of src/ and fails on one that src/sys or
 * images/flags.ts already exports, and on a name declared with the same
 * value in two files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SRC, tsFiles } from './src-files.js';

/** Folders still declaring their own, each with why. */
const NOT_YET: Readonly<Record<string, string>> = {};



const DECL = /^(export )?const ([A-Z][A-Z0-9_]+) = (-?(?:0x[0-9a-fA-F]+|0o[0-7]+|\d+)n?(?: << \d+n?)?);/gm;

/** The value of a declaration's right side: a number, or 1 << N. */
function valueOf(text: string): bigint {
  const [a, b] = text.split(' << ').map((x) => BigInt(x.replace(/n$/, '')));
  return b === undefined ? (a ?? 0n) : (a ?? 0n) << b;
}

interface Decl { file: string; name: string; value: string; exported: boolean; shifted: boolean }

function declsOf(file: string): Decl[] {
  return [...readFileSync(file, 'utf8').matchAll(DECL)].map((m) => ({
    file: relative(SRC, file), name: m[2] ?? '', value: String(valueOf(m[3] ?? '0')), exported: m[1] !== undefined, shifted: (m[3] ?? '').includes('<<'),
  }));
}

const all = tsFiles().filter((f) => !relative(SRC, f).startsWith('images/messages')).flatMap(declsOf);
const isHome = (d: Decl): boolean => d.file.startsWith('sys/') || d.file === 'images/flags.ts';
const allowed = (d: Decl): boolean => Object.keys(NOT_YET).some((dir) => d.file.startsWith(dir));
const homes = new Map(all.filter((d) => isHome(d) && d.exported).map((d) => [d.name, d]));

test('no constant of src/sys or images/flags.ts is declared again elsewhere', () => {
  const bad = all
    .filter((d) => !isHome(d) && !allowed(d) && homes.has(d.name))
    .map((d) => `src/${d.file}: ${d.name} (import it from src/${homes.get(d.name)?.file})`);
  assert.deepEqual(bad, [], bad.join('\n'));
});

test('no constant is declared with the same value in two files (it belongs in src/sys)', () => {
  const byKey = new Map<string, Decl[]>();
  // Plain numbers only: a size of our own written as 1 << 20 may well be chosen alike in two places.
  for (const d of all) {
    if (allowed(d) || d.shifted) continue;
    const k = `${d.name}=${BigInt(d.value)}`;
    byKey.set(k, [...(byKey.get(k) ?? []), d]);
  }
  const bad = [...byKey].filter(([, ds]) => new Set(ds.map((d) => d.file)).size > 1).map(([k, ds]) => `${k}: ${ds.map((d) => `src/${d.file}`).join(', ')}`);
  // Inside src/sys, two syscall numbers still live next to their one user (safe-fs and probe: openat2).
  const known = ['NR_OPENAT2=437'];
  assert.deepEqual(bad.filter((b) => !known.some((k) => b.startsWith(`${k}:`))), [], bad.join('\n'));
});

test('the folders still allowed their own constants still declare some of src/sys', () => {
  const done = Object.keys(NOT_YET).filter((dir) => !all.some((d) => d.file.startsWith(dir) && homes.has(d.name)));
  assert.deepEqual(done, [], 'these folders declare no constant of src/sys any more: take them off NOT_YET in test/arch/constants.test.ts');
});

/**
 * Names the kernel's headers give (socket options, fcntl and open flags,
 * prctl, seccomp, signals, ioctls, filesystem magics...) are declared in
 * src/sys alone. STILL_LOCAL lists any a user still declares itself, each
 * with why (none now); take a name off when it moves.
 */
const KERNEL_NAME = /^(SO|SOL|IP|IPV6|TCP|IPPROTO|AF|SOCK|MSG|SCM|SHUT|F|O|FD|AT|MAP|MADV|PROT|MREMAP|SA|SI|SIGEV|CLONE|PR|SECCOMP|SECURE|ARCH|MEMBARRIER|RSEQ|EFD|TFD|MFD|SPLICE|EPOLL|FAN|IN|UFFD|UFFDIO|S|UDIAG|UNIX_DIAG|INET_DIAG|NDIAG|NETLINK|ICMP|ICMPV6|LOCK|LEASE|TIOC|SIOC|FIO|TUN|PTS|TTYAUX)_[A-Z0-9_]+$|_MAGIC$|^IFNAMSIZ$/;
/** errno names, as src/sys/errno.ts spells them */
const ERRNO_NAMES = new Set([...readFileSync(join(SRC, 'sys', 'errno.ts'), 'utf8').matchAll(/'(E[A-Z0-9]+)'/g)].map((m) => m[1] ?? ''));
const isKernelName = (n: string): boolean => KERNEL_NAME.test(n) || ERRNO_NAMES.has(n);
const STILL_LOCAL: Readonly<Record<string, string>> = {
};

test('kernel names are declared in src/sys only', () => {
  // Names with a number (or 1 << N) of their own; sizes (_BYTES) are of our making.
  const local = all
    .filter((d) => !isHome(d) && !d.file.startsWith('images/') && isKernelName(d.name) && !d.name.endsWith('_BYTES'))
    .map((d) => `${d.file} ${d.name}`);
  const bad = local.filter((k) => STILL_LOCAL[k] === undefined);
  assert.deepEqual(bad, [], `declare these in src/sys (by topic) and import them:\n${bad.join('\n')}`);
  const moved = Object.keys(STILL_LOCAL).filter((k) => !local.includes(k));
  assert.deepEqual(moved, [], 'these are no longer declared there: take them off STILL_LOCAL in test/arch/constants.test.ts');
});
