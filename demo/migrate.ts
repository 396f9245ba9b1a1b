/**
 * `npm run demo:migrate [-- --size 1G --iterations 3]`: live migration of a
 * busy process between two "hosts" (net namespaces on this machine, see
 * migrate-net.ts), its TCP client connected all along.
 *
 *  1. A server (migrate-server.c, built here with gcc) with SIZE of memory
 *     writes 1% of it per second and streams ticks to a client on a third
 *     host, which checks that none is lost and that the server's memory
 *     stays right.
 *  2. Pre-dumps from host A, each sending its pages to a page server on
 *     host B: the first copies everything, the next ones only what was
 *     written since (tracked without soft-dirty, docs/incremental.md).
 *  3. The final dump with --lazy-pages, as CRIU's remote lazy restore:
 *     no page is copied while the server is frozen. Its pagemaps point at
 *     B's pre-dump images for pages not written since, and leave the last
 *     dirty pages in the frozen server on A, which the dump serves on a
 *     port of its own. --tcp-established: the network lock on A keeps the
 *     client's packets from meeting a reset while the server is away.
 *  4. The images are copied to B; B restores with --lazy-pages: the task
 *     runs at once, and a lazy-pages daemon (--page-server, pointed at the
 *     dump on A) fills its memory: the dirty pages from A, the rest from the
 *     pre-dumps on B, on fault and in the background. Then the dump on A
 *     ends and the server there is gone.
 *  5. The service address moves to B; the client carries on.
 * Run as root; needs gcc, ip (iproute2), nsenter, unshare and nft. Everything it
 * makes (namespaces, processes, files) is removed at the end, also on
 * failure and on Ctrl-C.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadImage } from '../src/images/index.js';
import { DemoNet, HOST_ADDR, PAGE_SERVER_PORT, SERVICE_ADDR, SERVICE_PORT } from './migrate-net.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = existsSync(join(here, '..', 'package.json')) ? join(here, '..') : join(here, '..', '..');
const CRIU_TS = join(repo, 'bin', 'criu-ts');
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (line = ''): void => { process.stdout.write(`${line}\n`); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A deadline that does not keep the demo alive once it is over. */
const deadline = (ms: number): Promise<number> => new Promise((r) => setTimeout(() => r(-1), ms).unref());
const mib = (pages: number): string => `${((pages * 4096) / 2 ** 20).toFixed(1)} MiB`;

interface Options { sizeMib: number; iterations: number }

function parseArgs(argv: string[]): Options {
  const o: Options = { sizeMib: 1024, iterations: 3 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--size' && v) {
      const m = /^(\d+)([MG]?)i?B?$/i.exec(v);
      if (!m) throw new Error(`--size ${v}: give MiB, or a number with M or G (64M, 1G)`);
      o.sizeMib = Number(m[1]) * ((m[2] ?? '').toUpperCase() === 'G' ? 1024 : 1);
      i++;
    } else if (a === '--iterations' && v && /^\d+$/.test(v) && Number(v) >= 1) {
      o.iterations = Number(v);
      i++;
    } else {
      throw new Error(`unknown or incomplete option ${a ?? ''} (use --size SIZE, --iterations N of at least 1)`);
    }
  }
  if (o.sizeMib < 1) throw new Error('--size: at least 1 MiB');
  return o;
}

/** Every process we start, so that cleanup can end them by pid (they run in sessions of their own). */
const started = new Set<ChildProcess>();

/** Spawn `argv` on `host` (nsenter), in its own session. */
function startOn(net: DemoNet, host: 'a' | 'b' | 'c', argv: string[], stdio: ('ignore' | 'pipe' | 'inherit' | number)[]): ChildProcess {
  const [cmd, args] = net.on(host, argv);
  const p = spawn(cmd, args, { detached: true, stdio });
  started.add(p);
  p.on('exit', () => started.delete(p));
  return p;
}

function exited(p: ChildProcess): Promise<number> {
  return new Promise((res) => {
    if (p.exitCode !== null || p.signalCode !== null) res(p.exitCode ?? 128);
    else p.once('exit', (c) => res(c ?? 128));
  });
}

/** Run criu-ts on `host`; resolves with seconds taken, rejects with its last error line. */
async function criuTs(net: DemoNet, host: 'a' | 'b', args: string[], log: string): Promise<number> {
  say(`    [host ${host.toUpperCase()}] $ criu-ts ${args.join(' ')}`);
  const t0 = performance.now();
  const p = startOn(net, host, [process.execPath, CRIU_TS, ...args, '-o', log], ['ignore', 'ignore', 'pipe']);
  let err = '';
  p.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await exited(p);
  if (code !== 0) throw new Error(`criu-ts ${args[0] ?? ''} on host ${host.toUpperCase()} failed (exit ${code}): ${err.trim() || `see ${log}`}`);
  return (performance.now() - t0) / 1000;
}

/** Start a criu-ts daemon on `host` with --status-fd 3; resolves once it says it is ready. */
async function daemon(net: DemoNet, host: 'a' | 'b', args: string[], log: string): Promise<ChildProcess> {
  say(`    [host ${host.toUpperCase()}] $ criu-ts ${args.join(' ')} &`);
  const p = startOn(net, host, [process.execPath, CRIU_TS, ...args, '--status-fd', '3', '-o', log], ['ignore', 'ignore', 'pipe', 'pipe']);
  let err = '';
  p.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  await new Promise<void>((res, rej) => {
    p.stdio[3]?.once('data', () => res());
    p.once('exit', (c) => rej(new Error(`criu-ts ${args[0] ?? ''} exited (${c}) before it was ready: ${err.trim() || `see ${log}`}`)));
  });
  return p;
}

interface DumpStats { written: number; parent: number; lazy: number; frozenMs: number; copyMs: number }
function dumpStats(dir: string): DumpStats {
  const d = loadImage(dir, 'STATS', 'dump').entries[0]?.dump;
  return {
    written: Number(d?.pages_written ?? 0), parent: Number(d?.pages_skipped_parent ?? 0), lazy: Number(d?.pages_lazy ?? 0),
    frozenMs: Number(d?.frozen_time ?? 0) / 1000, copyMs: Number(d?.memdump_time ?? 0) / 1000,
  };
}

/** The client's stdout, echoed and kept. */
class ClientOutput {
  lines: string[] = [];
  summary: Record<string, string> | undefined;
  attach(p: ChildProcess): void {
    let part = '';
    p.stdout?.on('data', (d: Buffer) => {
      part += d.toString();
      for (let i = part.indexOf('\n'); i >= 0; i = part.indexOf('\n')) {
        const line = part.slice(0, i);
        part = part.slice(i + 1);
        if (line.startsWith('summary ')) this.summary = Object.fromEntries(line.slice(8).split(' ').map((kv) => kv.split('=') as [string, string]));
        else say(`    | ${line}`);
        this.lines.push(line);
      }
    });
  }
  lastTick(): number {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const m = /^client: tick (\d+)/.exec(this.lines[i] ?? '');
      if (m) return Number(m[1]);
    }
    return 0;
  }
}

function netNsOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return '';
  }
}

/** The migrate-server under `root` (unshare's child, pid 1 of its namespace): its pid here, 0 if none. */
function serverUnder(root: number): number {
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${root}/task/${root}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return 0;
  }
  for (const k of kids) {
    if (isOurServer(k)) return k;
    const deeper = serverUnder(k);
    if (deeper) return deeper;
  }
  return 0;
}

function isOurServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('migrate-server');
  } catch {
    return false;
  }
}

async function migrate(o: Options, net: DemoNet, work: string, stopServer: (pid: number) => void): Promise<boolean> {
  say(bold(`criu-ts live migration demo: a ${o.sizeMib} MiB process moves from host A to host B with its TCP client connected`));
  say(`(hosts are net namespaces ${net.ns.a}, ${net.ns.b}, ${net.ns.c}; files in ${work}; all removed at the end)`);
  say();
  say(bold('Setup'));
  net.up();
  say(`    LAN 10.77.0.0/24: client host C ${HOST_ADDR.c}, host A ${HOST_ADDR.a}, host B ${HOST_ADDR.b}; service address ${SERVICE_ADDR} on A`);
  const exe = join(work, 'migrate-server');
  execFileSync('gcc', ['-O2', '-o', exe, join(repo, 'demo', 'migrate-server.c')], { stdio: 'inherit' });
  const ready = join(work, 'server.ready');
  const logFd = openSync(join(work, 'server.log'), 'a');
  // Pid 1 of a pid namespace of its own: this one machine plays both hosts, and the original, frozen on A
  // until B's daemon has its last pages, keeps its pids meanwhile; the restore on B makes a new pid namespace.
  const server = startOn(net, 'a', ['unshare', '--pid', '--fork', exe, String(o.sizeMib), SERVICE_ADDR, String(SERVICE_PORT), ready], ['ignore', logFd, logFd]);
  closeSync(logFd);
  for (let i = 0; !existsSync(ready); i++) {
    if (server.exitCode !== null || i > 1200) throw new Error(`the server did not start: ${readFileSync(join(work, 'server.log'), 'utf8').trim()}`);
    await sleep(50);
  }
  const innerPid = Number(readFileSync(ready, 'utf8'));
  const pid = serverUnder(server.pid ?? 0);
  if (pid === 0) throw new Error('the server is not running under unshare');
  stopServer(pid);
  say(`    server pid ${pid} on host A (pid ${innerPid} of its pid namespace): ${o.sizeMib} MiB, writes 1% of it per second, checks all of it every 2 s`);
  const out = new ClientOutput();
  const client = startOn(net, 'c', [process.execPath, join(here, 'migrate-client.js'), SERVICE_ADDR, String(SERVICE_PORT)], ['ignore', 'pipe', 'inherit']);
  out.attach(client);
  await sleep(2500);
  say();

  const a = (n: string): string => join(work, 'a', n);
  const b = (n: string): string => join(work, 'b', n);
  const names = [...Array.from({ length: o.iterations }, (_, i) => `pre${i + 1}`), 'final'];
  let fullCopyMs = 0;
  let prev: string | undefined;
  let source: ChildProcess | undefined;
  for (const name of names) {
    const final = name === 'final';
    say(bold(final ? 'Final dump (the server is stopped for good on A)' : `Pre-dump ${name.slice(3)} of ${o.iterations} (the server keeps running)`));
    mkdirSync(a(name), { recursive: true });
    mkdirSync(b(name), { recursive: true });
    const parent = prev ? ['--prev-images-dir', `../${prev}`] : [];
    let secs = 0;
    if (final) {
      // No page server on B: the dump serves the pages it leaves in the frozen server (PE_LAZY) itself, on A.
      const t0 = performance.now();
      source = await daemon(net, 'a', [
        'dump', '-t', String(pid), '-D', a(name), ...parent, '--track-mem', '--tcp-established', '--network-lock', 'nftables',
        '--lazy-pages', '--address', HOST_ADDR.a, '--port', String(PAGE_SERVER_PORT), '-v3',
      ], join(work, `${name}.log`));
      secs = (performance.now() - t0) / 1000;
    } else {
      const ps = await daemon(net, 'b', ['page-server', '-D', b(name), '--address', HOST_ADDR.b, '--port', String(PAGE_SERVER_PORT), ...parent], join(work, `page-server-${name}.log`));
      const send = ['--page-server', '--address', HOST_ADDR.b, '--port', String(PAGE_SERVER_PORT)];
      secs = await criuTs(net, 'a', ['pre-dump', '-t', String(pid), '-D', a(name), ...parent, ...send], join(work, `${name}.log`));
      if ((await exited(ps)) !== 0) throw new Error(`the page server for ${name} failed (see ${join(work, `page-server-${name}.log`)})`);
    }
    const st = dumpStats(a(name));
    if (!prev) fullCopyMs = st.copyMs;
    if (final) {
      say(`    images written with the server frozen ${st.frozenMs.toFixed(0)} ms: ${st.lazy} pages (${mib(st.lazy)}) written since the last pre-dump ` +
        `stay in the frozen server on A for B to fetch, ${st.parent} are on B already, ${st.written} (stack and the like) went into the images; ` +
        `the command was ready in ${secs.toFixed(2)} s`);
      // A dump without pre-dumps keeps the server frozen while it copies all of its memory, as pre-dump 1 did (it ran meanwhile).
      say(`    final freeze ${st.frozenMs.toFixed(0)} ms; copying all memory took ${fullCopyMs.toFixed(0)} ms in pre-dump 1 ` +
        `(the freeze of a dump without pre-dumps): ${((100 * st.frozenMs) / Math.max(fullCopyMs, 1e-3)).toFixed(1)}%`);
    } else {
      say(`    ${st.written} pages (${mib(st.written)}) sent to host B, ${st.parent} unchanged since the last pre-dump; ` +
        `server frozen ${st.frozenMs.toFixed(0)} ms, pages copied in ${st.copyMs.toFixed(0)} ms (while it ran), the command took ${secs.toFixed(2)} s`);
    }
    prev = name;
    if (!final) await sleep(1000);
    say();
  }
  const lastBefore = out.lastTick();

  say(bold('Restore on host B, memory on demand'));
  // What scp -a would do between real hosts; the parent link finds B's copy of the last pre-dump.
  cpSync(a('final'), b('final'), { recursive: true, verbatimSymlinks: true });
  say(`    copied ${readdirSync(a('final')).length - 1} image files from A to B (B holds the pre-dumps' pages)`);
  net.addServiceOnB();
  const lazyLog = join(work, 'lazy-pages.log');
  const lazy = await daemon(net, 'b', [
    'lazy-pages', '-D', b('final'), '--page-server', '--address', HOST_ADDR.a, '--port', String(PAGE_SERVER_PORT), '-v3',
  ], lazyLog);
  const pidfile = join(work, 'restored.pid');
  const restoreS = await criuTs(net, 'b', ['restore', '-D', b('final'), '-d', '--tcp-established', '--lazy-pages', '--pidfile', pidfile], join(work, 'restore.log'));
  const newPid = Number(readFileSync(pidfile, 'utf8'));
  stopServer(newPid);
  net.moveServiceRoute();
  say(`    restored in ${restoreS.toFixed(2)} s (the command's whole run) as pid ${newPid} (pid ${innerPid} of a new pid namespace); the route to ${SERVICE_ADDR} now points at host B`);
  const lazyDone = exited(lazy);
  await sleep(3000);
  const lazyCode = await Promise.race([lazyDone, deadline(60_000)]);
  const lazyLine = /all pages in place: (.*)$/m.exec(existsSync(lazyLog) ? readFileSync(lazyLog, 'utf8') : '')?.[1];
  say(`    lazy-pages daemon: ${lazyCode === 0 ? `done, ${lazyLine ?? 'every page in place'}` : `did not finish (exit ${lazyCode}, see ${lazyLog})`}`);
  // The dump on A ends once the daemon has every page: the server there is gone.
  const sourceCode = source ? await Promise.race([exited(source), deadline(30_000)]) : -1;
  const served = /lazy pages: (\d+) page\(s\) served/.exec(readFileSync(join(work, 'final.log'), 'utf8'))?.[1];
  say(`    the dump on host A ${sourceCode === 0 ? `served ${served ?? '?'} pages to B's daemon and ended` : `did not end well (exit ${sourceCode}, see ${join(work, 'final.log')})`}`);
  say();

  say(bold('Result'));
  const onB = isOurServer(newPid) && netNsOf(newPid) === `net:[${statSync(`/run/netns/${net.ns.b}`).ino}]` && !isOurServer(pid);
  client.kill('SIGTERM');
  for (let i = 0; i < 100 && !out.summary; i++) await sleep(50);
  const s = out.summary ?? {};
  const ok = onB && s['open'] === '1' && s['gaps'] === '0' && s['bad'] === '0' && s['pids'] === String(innerPid) &&
    Number(s['last']) > lastBefore && lazyCode === 0 && sourceCode === 0;
  say(`    the client saw ticks 1 to ${s['last'] ?? '?'} from pid ${s['pids'] ?? '?'}, ${s['gaps'] ?? '?'} missing or repeated, ` +
    `${s['bad'] ?? '?'} bad pages; longest pause ${s['longest-pause-ms'] ?? '?'} ms (the downtime it felt)`);
  say(ok
    ? bold(`The connection survived: the server (pid ${innerPid} in its namespace) now runs on host B as pid ${newPid} and went on from tick ${lastBefore}.`)
    : bold('Something went wrong: see the lines above (CRIU_TS_DEMO_KEEP=1 keeps the work dir and its logs).'));
  return ok;
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    say(`criu-ts demo:migrate: ${(e as Error).message}`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    say('criu-ts demo:migrate: please run as root (net namespaces, ptrace, clone3 with set_tid).');
    return 1;
  }
  for (const [tool, pkg] of [['gcc', 'gcc'], ['ip', 'iproute2'], ['nsenter', 'util-linux'], ['unshare', 'util-linux'], ['nft', 'nftables']] as const) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).error) {
      say(`criu-ts demo:migrate: ${tool} is missing; install it first (apt-get install -y ${pkg}).`);
      return 1;
    }
  }
  const stale = DemoNet.removeStale();
  if (stale.length) say(`(removed ${stale.length} net namespace(s) left by a demo that was killed: ${stale.join(', ')})`);
  const work = mkdtempSync(join(tmpdir(), 'criu-ts-migrate-'));
  const net = new DemoNet();
  const serverPids: number[] = [];
  const cleanup = (): void => {
    for (const p of started) {
      try { process.kill(-(p.pid ?? 0), 'SIGKILL'); } catch { /* gone */ }
    }
    // The restored server is nobody's child of ours: by pid, once we know it is ours.
    for (const p of serverPids) {
      if (!isOurServer(p)) continue;
      try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    }
    net.down();
    if (process.env['CRIU_TS_DEMO_KEEP'] !== '1') rmSync(work, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      say(`\ncriu-ts demo:migrate: ${sig}, cleaning up`);
      cleanup();
      process.exit(130);
    });
  }
  try {
    return (await migrate(o, net, work, (pid) => { serverPids.push(pid); })) ? 0 : 1;
  } catch (e) {
    say(`criu-ts demo:migrate failed: ${e instanceof Error ? e.message : String(e)}`);
    if (process.env['CRIU_TS_DEMO_KEEP'] === '1') say(`(logs kept in ${work})`);
    return 1;
  } finally {
    cleanup();
  }
}

main().then((code) => { process.exitCode = code; });
