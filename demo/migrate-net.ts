/**
 * The little network `npm run demo:migrate` builds on this machine: three
 * net namespaces stand for three hosts on one LAN.
 *
 *   client host (C)  br0 10.77.0.1/24, the "switch", and the client
 *      |-- va <veth> eth0  host A (source)       10.77.0.10/24
 *      `-- vb <veth> eth0  host B (destination)  10.77.0.20/24
 *
 * The service address 10.77.1.1/32 sits on A's loopback; C reaches it with
 * a /32 route through A. Moving it (as a cluster would, by announcing the
 * route again) is: add it on B, point C's route at B, remove it from A.
 * Only the net namespace changes between hosts (nsenter --net, not `ip
 * netns exec`, which also unshares the mount namespace), so the task and
 * criu-ts see one file system, as after copying the images across.
 *
 * Everything lives in the three namespaces, named after the demo's pid:
 * deleting them removes the veths, the bridge and any nftables lock left
 * in them. Namespaces of an earlier run whose demo is gone are removed too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const SERVICE_ADDR = '10.77.1.1';
export const SERVICE_PORT = 7000;
export const PAGE_SERVER_PORT = 7007;
export const HOST_ADDR = { a: '10.77.0.10', b: '10.77.0.20', c: '10.77.0.1' } as const;
export type Host = keyof typeof HOST_ADDR;

const PREFIX = 'criu-ts-migrate-';

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

export class DemoNet {
  readonly ns: Record<Host, string>;
  private made: string[] = [];

  constructor(readonly owner: number = process.pid) {
    this.ns = { a: `${PREFIX}${owner}-a`, b: `${PREFIX}${owner}-b`, c: `${PREFIX}${owner}-c` };
  }

  /** `nsenter --net=...` prefix running `argv` on `host`. */
  on(host: Host, argv: string[]): [string, string[]] {
    return ['nsenter', [`--net=/run/netns/${this.ns[host]}`, ...argv]];
  }

  /** The namespaces of earlier demos whose process is gone (killed with SIGKILL). */
  static removeStale(): string[] {
    const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    const gone: string[] = [];
    for (const line of (r.stdout ?? '').split('\n')) {
      const m = new RegExp(`^(${PREFIX}(\\d+)-[abc])\\b`).exec(line);
      if (m && !alive(Number(m[2]))) {
        spawnSync('ip', ['netns', 'delete', m[1] as string], { stdio: 'ignore' });
        gone.push(m[1] as string);
      }
    }
    return gone;
  }

  up(): void {
    for (const h of ['a', 'b', 'c'] as const) {
      ip(['netns', 'add', this.ns[h]]);
      this.made.push(this.ns[h]);
      ip(['-n', this.ns[h], 'link', 'set', 'lo', 'up']);
    }
    const { a, b, c } = this.ns;
    ip(['-n', c, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', c, 'addr', 'add', `${HOST_ADDR.c}/24`, 'dev', 'br0']);
    ip(['-n', c, 'link', 'set', 'br0', 'up']);
    for (const [port, host] of [['va', a], ['vb', b]] as const) {
      ip(['-n', c, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host]);
      ip(['-n', c, 'link', 'set', port, 'master', 'br0']);
      ip(['-n', c, 'link', 'set', port, 'up']);
      ip(['-n', host, 'link', 'set', 'eth0', 'up']);
    }
    ip(['-n', a, 'addr', 'add', `${HOST_ADDR.a}/24`, 'dev', 'eth0']);
    ip(['-n', b, 'addr', 'add', `${HOST_ADDR.b}/24`, 'dev', 'eth0']);
    ip(['-n', a, 'addr', 'add', `${SERVICE_ADDR}/32`, 'dev', 'lo']);
    ip(['-n', c, 'route', 'add', `${SERVICE_ADDR}/32`, 'via', HOST_ADDR.a]);
  }

  /** The service address may be bound on B (before the restore binds it). */
  addServiceOnB(): void {
    ip(['-n', this.ns.b, 'addr', 'add', `${SERVICE_ADDR}/32`, 'dev', 'lo']);
  }

  /** The client's packets go to B from now on; A no longer has the address. */
  moveServiceRoute(): void {
    ip(['-n', this.ns.c, 'route', 'replace', `${SERVICE_ADDR}/32`, 'via', HOST_ADDR.b]);
    ip(['-n', this.ns.a, 'addr', 'del', `${SERVICE_ADDR}/32`, 'dev', 'lo']);
  }

  /** Delete every namespace this run made (idempotent, never throws). */
  down(): void {
    for (const n of this.made.splice(0)) spawnSync('ip', ['netns', 'delete', n], { stdio: 'ignore' });
  }
}
