/**
 * The network namespace's devices, addresses, routes, rules and firewall
 * as CRIU keeps them: addresses, routes and rules are the netlink dumps of
 * `ip addr save`, `ip route save`, `ip -6 route save` and `ip rule save`
 * (raw images ifaddr-, route-, route6-, rule-<ns>.img) put back with
 * `ip ... restore`; the nftables ruleset is `nft list ruleset` text
 * (nftables-<ns>.img), put back with `nft -f`. Every tool runs as a child
 * of our thread while it is inside the namespace (sys/ns.ts: the child is
 * forked by that thread and inherits its namespace).
 *
 * The devices are net-devices.ts's.
 */
import { childProcess } from '../../builtins.js';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriuTsError } from '../../errors.js';
import type { RawImageKey } from '../../images/index.js';

/**
 * `ip route restore` wants a file it can seek in (ftell on its stdin), as
 * CRIU gives it: the bytes go to an unlinked temporary file.
 */
function seekableInput(data: Buffer): number {
  const dir = mkdtempSync(join(tmpdir(), 'criu-ts-net-'));
  const path = join(dir, 'input');
  try {
    const fd = openSync(path, 'wx+', 0o600);
    writeSync(fd, data, 0, data.length, 0);
    return fd;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Run `bin args` in the caller's namespaces with `input` on stdin; its
 * stdout, or undefined when `canFail` and it failed. `fd3`, when given, is
 * the tool's fd 3 (a namespace it names as /proc/self/fd/3).
 */
export function runTool(code: 'EDUMP' | 'ERESTORE', bin: string, args: readonly string[], what: string, input?: Buffer, canFail = false, fd3?: number): Buffer | undefined {
  const stdin = input === undefined ? 'ignore' : seekableInput(input);
  let r;
  try {
    const stdio = fd3 === undefined ? [stdin, 'pipe', 'pipe'] as const : [stdin, 'pipe', 'pipe', fd3] as const;
    r = childProcess().spawnSync(bin, args, { stdio: [...stdio], maxBuffer: 256 << 20 });
  } finally {
    if (typeof stdin === 'number') closeSync(stdin);
  }
  if (r.error === undefined && r.status === 0) return r.stdout;
  if (canFail) return undefined;
  const why = r.error !== undefined ? r.error.message : `exit status ${String(r.status ?? r.signal)}: ${r.stderr.toString().trim().split('\n')[0] ?? ''}`;
  throw new CriuTsError(code, `${what}: \`${bin} ${args.join(' ')}\` failed: ${why}`, { bin, args });
}

/** The raw images of the namespace, CRIU's names and tools: the image, ip's save and restore args. */
export const IP_DUMPS: readonly { image: RawImageKey; save: readonly string[]; restore: readonly string[]; canFail?: boolean }[] = [
  { image: 'IFADDR', save: ['addr', 'save'], restore: ['addr', 'restore'] },
  { image: 'ROUTE', save: ['route', 'save'], restore: ['route', 'restore'] },
  { image: 'ROUTE6', save: ['-6', 'route', 'save'], restore: ['-6', 'route', 'restore'] },
  // Older ip lacks `rule save`: CRIU then leaves the image out.
  { image: 'RULE', save: ['rule', 'save'], restore: ['rule', 'restore'], canFail: true },
];
