/**
 * The network lock (--network-lock nftables|skip): while a dump looks at
 * TCP connections and until the restored tree runs, no packet of those
 * connections moves, so neither end (ours in repair mode, or a peer
 * outside the dump) changes what the images say, and a peer that sends
 * meanwhile is held back (it retransmits later) instead of being reset.
 *
 * As CRIU's nftables lock: one table `inet CRIU-<dump run id>` (the run id
 * is inventory.img's dump_criu_run_id, so restore finds the same table),
 * with input and output chains that accept packets marked 0xc114 (the
 * segments restore writes in a peer's name) and drop every packet whose
 * address/port 4-tuple is in the sets conns4/conns6; each connection goes
 * in both ways when the dump reaches it, before repair mode.
 *
 * Lifetime: a failed dump, or one that leaves the tree running, deletes the
 * table (and if criu-ts dies first, its guardian does: infect/guardian-undo.ts); a dump that kills the tree leaves it for the restore, which
 * deletes it when every connection is back, just before the tree resumes
 * (a failed restore deletes it too: CRIU keeps it for another try, but a
 * lock nobody comes back for drops the peers' packets, on ports that are
 * later reused, for good). A dump that dies before it is over (killed) leaves a marker
 * /run/criu-ts/net-lock/<run id>, flocked while its dump runs: the next dump or restore
 * removes the table of a marker nobody holds (net-lock-marker.ts).
 *
 * Through the nft program (nftables package). --network-lock iptables
 * locks connection by connection in CRIU's iptables rules instead
 * (net-lock-iptables.ts); its marker lists the connections locked.
 */
import { childProcess } from '../../../builtins.js';
import { existsSync } from 'node:fs';
import { nsLinkOf } from '../../../proc/index.js';
import { CriuTsError } from '../../../errors.js';
import { imageFile } from '../../../images/index.js';
import { logger } from '../../../log.js';
import { AF_INET6, IPPROTO_TCP, TCP_LISTEN, TCP_CLOSE, nftTableExists } from '../../../sys/index.js';
import { stateKey, type DumpContext, type LockMethod } from '../../types.js';
import type { FileEntry } from '../../../images/messages.js';
import { claimMarker, forEachDeadMarker, MARKERS, type Marker } from './net-lock-marker.js';
import { join } from 'node:path';
import { iptConnection, iptLock, iptUnlock, iptUnlockArgv, iptMarkerLine, parseIptMarkerLine, type IptConnection } from './net-lock-iptables.js';
import { guardian } from '../../../infect/guardian.js';
import { addrText, isV4Mapped } from './addr.js';
import { REPAIR_PACKET_MARK } from './tcp-states.js';

const log = logger('net-lock');
const NFT_PATHS = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft'];

/** inventory.img's network_lock_method, CRIU's numbering */
export const LOCK_METHOD: Readonly<Record<LockMethod, number>> = { iptables: 0, nftables: 1, skip: 2 };

export function nftPath(): string | undefined {
  return NFT_PATHS.find((p) => existsSync(p));
}

/** The default method: nftables where the nft program is installed, else none. */
export function defaultLockMethod(): LockMethod {
  return nftPath() !== undefined ? 'nftables' : 'skip';
}

function nft(script: string): void {
  const bin = nftPath();
  if (!bin) throw new CriuTsError('EUNSUPPORTED', 'the network lock needs the nft program (Debian: nftables)', {});
  try {
    childProcess().execFileSync(bin, ['-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (e) {
    const why = (e as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] ?? (e as Error).message;
    throw new CriuTsError('EDUMP', `nft: ${why}`, {}, e);
  }
}

/**
 * A dump's run id names an nftables table in a command we run: it comes
 * from inventory.img, so anything but a plain id (CRIU and criu-ts write a
 * UUID) is refused, never spliced into nft's input.
 */
export function checkRunId(runId: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(runId)) {
    throw new CriuTsError('EIMAGE', `${imageFile('INVENTORY')}: dump_criu_run_id ${JSON.stringify(runId.slice(0, 80))} is not a run id (letters, digits, - and _)`, { field: 'dump_criu_run_id' });
  }
}

const table = (runId: string): string => {
  checkRunId(runId);
  return `inet CRIU-${runId}`;
};

/** Whether nftables can make and remove a table here (check --feature network_lock_nftables). */
export function probeNftables(): { ok: boolean; why?: string } {
  if (!nftPath()) return { ok: false, why: 'no nft program (install nftables)' };
  const name = `inet criu-ts-probe-${process.pid}`;
  try {
    nft(`add table ${name}\ndelete table ${name}\n`);
    return { ok: true };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
}

function deleteTable(runId: string): void {
  try {
    nft(`delete table ${table(runId)}\n`);
  } catch (e) {
    // Already gone (a restore retried, or removed by hand) is what we want.
    if (!/No such file|does not exist/i.test((e as Error).message)) throw e;
  }
}

/** criu-ts's own net namespace, as loaded (the dump steps its thread into a task's to look at sockets). */
const HOME_NET = netNsOfThisThread();

function netNsOfThisThread(): string {
  return nsLinkOf('thread-self', 'net') ?? '';
}

/** Whether this thread is in criu-ts's own net namespace, where the locks and their markers live. */
function atHome(): boolean {
  return netNsOfThisThread() === HOME_NET;
}

/** Remove the locks of dumps that died before they were over. */
export function clearStaleLocks(): void {
  // From inside a tree's namespace the tables are not there to see: leave the markers for a run at home.
  if (!atHome()) return;
  forEachDeadMarker((runId, lines) => {
    const owner = lines[0]?.trim() ?? '?';
    try {
      // An iptables lock lists its connections; an nftables one is its table.
      const conns = lines.slice(1).map(parseIptMarkerLine).filter((c): c is IptConnection => c !== undefined);
      if (lines[1]?.trim() === 'iptables') conns.forEach(iptUnlock);
      else deleteTable(runId);
      log.warn(`removed the network lock of dump ${runId}, whose criu-ts (pid ${owner} in its pid namespace) died before the dump was over`);
    } catch (e) {
      log.warn(`cannot remove the stale network lock of dump ${runId}: ${(e as Error).message}`);
    }
  });
}

interface DumpLock {
  runId: string;
  /** held while the dump runs: the next criu-ts removes the lock of a dump that died */
  marker: Marker;
  locked: Set<string>;
  /** iptables: the connections locked, taken back when the tasks run on */
  ipt: IptConnection[];
}

const LOCK = stateKey<DumpLock>('inet-net-lock');

function setupIptables(ctx: DumpContext): DumpLock {
  clearStaleLocks();
  const runId = ctx.runId;
  checkRunId(runId);
  const lock: DumpLock = { runId, marker: claimMarker(runId, ['iptables']), locked: new Set(), ipt: [] };
  guardian()?.scrap(join(MARKERS, runId));
  ctx.atExit((tasksLive) => {
    // Tasks that run on need their connections; killed ones leave the rules to the restore.
    try {
      if (tasksLive) {
        let ok = true;
        for (const c of lock.ipt) ok = iptUnlock(c) && ok;
        if (!ok) throw new CriuTsError('EDUMP', 'the network lock (iptables) could not be taken away from every connection', {});
      }
    } finally {
      lock.marker.release();
    }
  });
  log.info('network locked with iptables, connection by connection');
  return lock;
}

function setup(ctx: DumpContext): DumpLock {
  clearStaleLocks();
  const runId = ctx.runId;
  const t = table(runId);
  const held = claimMarker(runId);
  // Killed from here on, with the tree running on, the guardian takes the lock away (infect/guardian-undo.ts).
  const guard = guardian();
  guard?.undo([nftPath() ?? 'nft', 'delete', 'table', 'inet', `CRIU-${runId}`]);
  guard?.scrap(join(MARKERS, runId));
  // Before the table: a failed nft leaves nothing (deleteTable takes an absent table as done).
  ctx.atExit((tasksLive) => {
    // Tasks that run on need their connections; killed ones leave the lock to the restore.
    try {
      if (tasksLive) deleteTable(runId);
    } finally {
      held.release();
    }
  });
  const m = `0x${REPAIR_PACKET_MARK.toString(16)}`;
  const tuple4 = 'ip saddr . tcp sport . ip daddr . tcp dport';
  const tuple6 = 'ip6 saddr . tcp sport . ip6 daddr . tcp dport';
  nft([
    `add table ${t}`,
    `add chain ${t} output { type filter hook output priority 0; }`,
    `add chain ${t} input { type filter hook input priority 0; }`,
    `add rule ${t} output meta mark ${m} accept`,
    `add rule ${t} input meta mark ${m} accept`,
    `add set ${t} conns4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }`,
    `add set ${t} conns6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }`,
    `add rule ${t} output ${tuple4} @conns4 drop`,
    `add rule ${t} input ${tuple4} @conns4 drop`,
    `add rule ${t} output ${tuple6} @conns6 drop`,
    `add rule ${t} input ${tuple6} @conns6 drop`,
    '',
  ].join('\n'));
  log.info(`network locked: table ${t}`);
  return { runId, marker: held, locked: new Set(), ipt: [] };
}


/** "a . port" for an nft set element. */
function endpoint(family: number, words: readonly number[], port: number): string {
  const t = addrText(family, words, port);
  const host = t.slice(0, t.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return `${host} . ${port}`;
}

/**
 * Hold every packet of the connection src -> dst, both ways, from now until
 * the restored tree resumes (or the dump fails). No-op with --network-lock skip.
 */
export function lockConnection(ctx: DumpContext, family: number, src: readonly number[], sport: number, dst: readonly number[], dport: number): void {
  if (ctx.opts.networkLock === 'skip') return;
  // A connection in a net namespace other than ours is held by the lock of
  // its whole namespace (kinds/ns/net-lock.ts), as CRIU does; nft or
  // iptables run from here would act inside that namespace.
  if (!atHome()) return;
  if (ctx.opts.networkLock === 'iptables') {
    const lock = ctx.memo(LOCK, () => setupIptables(ctx));
    const c = iptConnection(family, src, sport, dst, dport);
    const key = iptMarkerLine(c);
    if (lock.locked.has(key)) return;
    lock.locked.add(key);
    // Written down first: a criu-ts killed right after the insert leaves a rule the next run finds.
    lock.marker.append(key);
    for (const argv of iptUnlockArgv(c)) guardian()?.undo(argv);
    iptLock(c);
    lock.ipt.push(c);
    return;
  }
  const lock = ctx.memo(LOCK, () => setup(ctx));
  let fam = family;
  let a = src;
  let b = dst;
  if (family === AF_INET6 && isV4Mapped(src) && isV4Mapped(dst)) {
    // IPv4 on the wire.
    fam = 2;
    a = [src[3] ?? 0];
    b = [dst[3] ?? 0];
  }
  const set = fam === AF_INET6 ? 'conns6' : 'conns4';
  const one = endpoint(fam, a, sport);
  const other = endpoint(fam, b, dport);
  const key = `${one} > ${other}`;
  if (lock.locked.has(key)) return;
  lock.locked.add(key);
  lock.locked.add(`${other} > ${one}`);
  nft(`add element ${table(lock.runId)} ${set} { ${one} . ${other}, ${other} . ${one} }\n`);
}


/**
 * Whether the images hold a TCP connection a lock may hold (neither
 * listening nor closed, with a peer): without one, a lock table holds
 * nothing of the tree's, and its removal may wait until the tree runs.
 */
export function holdsConnections(files: readonly FileEntry[]): boolean {
  return files.some((f) => {
    const k = f.isk;
    return k !== undefined && k.proto === IPPROTO_TCP && k.state !== TCP_LISTEN && k.state !== TCP_CLOSE && k.dst_port !== 0;
  });
}

/**
 * Restore: the connections are back; let their packets through (the table
 * of dump `runId`, or with iptables the rules of every TCP connection in
 * `files`, as the dump, CRIU's or ours, inserted them).
 */
export function unlockNetwork(method: number | undefined, runId: string | undefined, files: readonly FileEntry[] = []): void {
  clearStaleLocks();
  if (method === LOCK_METHOD.iptables) {
    let n = 0;
    for (const f of files) {
      const k = f.isk;
      if (!k || k.proto !== IPPROTO_TCP || k.state === TCP_LISTEN || k.state === TCP_CLOSE || k.dst_port === 0) continue;
      if (!iptUnlock(iptConnection(k.family, k.src_addr ?? [], k.src_port, k.dst_addr ?? [], k.dst_port))) {
        throw new CriuTsError('ERESTORE', `network unlock: the iptables rules of a connection to port ${k.dst_port} could not be removed`, { id: k.id });
      }
      n++;
    }
    if (n > 0) log.info(`network unlocked: iptables rules of ${n} connection(s)`);
    return;
  }
  if (method !== LOCK_METHOD.nftables || !runId) return;
  // A dump makes its table with its first connection (CRIU's always):
  // most restores have none to remove, and asking the kernel costs no nft run.
  checkRunId(runId);
  if (nftTableExists('inet', `CRIU-${runId}`) === false) {
    log.debug(`no network lock to take away: no table ${table(runId)}`);
    return;
  }
  deleteTable(runId);
  log.info(`network unlocked: table ${table(runId)}`);
}
