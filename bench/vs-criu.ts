/**
 * criu-ts beside CRIU itself, in one run: for each case both tools dump and
 * restore the same kind of subject through their command lines, taking
 * turns going first, and each whole process is measured for wall time and
 * peak RSS (bench/c/measure.c, wait4's ru_maxrss), and through RPC: one
 * `swrk` worker per request, as runc drives CRIU, timed from its start to
 * its answer. criu-ts is also timed through the library in this Node
 * process, where there is no start-up.
 * Images on /dev/shm; restores are detached (-d) and the restored tree is
 * killed afterwards.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../src/api/index.js';
import { decodeMessage, encodeMessage, readImage } from '../src/images/index.js';
import { POLLIN, close as closeFd, pollFd, recvPacket, sendPacket, seqpacketPair, setChildSubreaper } from '../src/sys/index.js';
import { buildHelper, startHeld, killHeld, killRestored, shmDir, removeDir, nowS, median, status, repoRoot } from './helpers.js';

export interface ToolFigures {
  /** wall seconds of each measured run */
  s: number[];
  /** peak RSS of each run, KiB */
  rssKiB: number[];
  /** CPU seconds (user+sys) of each run */
  cpuS: number[];
}

export interface OpFigures {
  ours: ToolFigures;
  criu: ToolFigures;
  /** through RPC: `swrk` started for the request, until its answer */
  oursRpc: ToolFigures;
  criuRpc: ToolFigures;
  /** criu-ts through the library in this process (no node start) */
  lib: number[];
}

export interface SideCase {
  name: string;
  runs: number;
  dump: OpFigures;
  restore?: OpFigures;
  /** targets of the speed issue, as ratios criu-ts / CRIU */
  target: { dump: number; restore?: number; lib?: number };
  /** a tool that failed on this case: why (its later runs are skipped) */
  failed?: Partial<Record<Tool, string>>;
}

interface Measured { s: number; rssKiB: number; cpuS: number }
/** a tool and the way it is driven: its CLI or its RPC worker */
type Tool = 'ours' | 'criu' | 'oursRpc' | 'criuRpc';
type Who = Tool | 'lib';

function newOp(): OpFigures {
  const t = (): ToolFigures => ({ s: [], rssKiB: [], cpuS: [] });
  return { ours: t(), criu: t(), oursRpc: t(), criuRpc: t(), lib: [] };
}

/** Run a whole command under bench/c/measure; throws with its log on failure. */
function measure(cmd: string[], log: string, toolLog: string): Measured {
  const out = execFileSync(buildHelper('measure'), [log, ...cmd], { encoding: 'utf8' });
  const [s, rss, code, cpu] = out.trim().split(/\s+/).map(Number);
  if (code !== 0) {
    let why = '';
    for (const f of [toolLog, log]) {
      try {
        // The last error line: CRIU logs warnings it lives with as "Error" too.
        why ||= execFileSync('sh', ['-c', 'grep -i error "$1" | tail -n 1', 'sh', f], { encoding: 'utf8' }).trim();
      } catch {
        // no such line or file
      }
    }
    throw new Error(`${cmd[1]} exited ${code}${why ? `: ${why}` : ''}`);
  }
  return { s: s ?? Number.NaN, rssKiB: rss ?? 0, cpuS: cpu ?? Number.NaN };
}

/**
 * One RPC request to a `BIN swrk 3` started for it (under measure, for
 * its peak RSS): seconds from the worker's start to its answer. The
 * images dir goes as an fd of this process, as runc passes it.
 */
async function rpc(bin: string, req: Record<string, unknown>, log: string): Promise<Measured & { resp: Record<string, unknown> }> {
  const [ours, theirs] = seqpacketPair();
  let child: ChildProcess | undefined;
  try {
    const t0 = nowS();
    child = spawn(buildHelper('measure'), ['--keep-fd3', log, bin, 'swrk', '3'], { stdio: ['ignore', 'pipe', 'ignore', theirs] });
    closeFd(theirs);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number>((res) => child?.once('exit', (c) => res(c ?? 1)));
    sendPacket(ours, encodeMessage('criu_req', req));
    // Blocking waits: nothing else runs here, and a timer would add its latency to the figure.
    // (An EINTR, say a SIGCHLD of a reaped task, reads as 0: poll again.)
    const deadline = Date.now() + 300_000;
    let ev = 0;
    while (ev === 0 && Date.now() < deadline) ev = pollFd(ours, POLLIN, deadline - Date.now());
    if ((ev & POLLIN) === 0) throw new Error(`${bin} swrk: no answer`);
    const pkt = recvPacket(ours);
    const s = nowS() - t0;
    if (pkt === null) throw new Error(`${bin} swrk hung up without answering`);
    const resp = decodeMessage('criu_resp', pkt.data) as Record<string, unknown>;
    closeFd(ours);
    await exited;
    const words = out.trim().split(/\s+/);
    const rssKiB = Number(words[1] ?? 0);
    const cpuS = Number(words[3] ?? Number.NaN);
    if (resp['success'] !== true) throw new Error(`${bin} swrk ${String(req['type'])}: ${String(resp['cr_errmsg'] ?? `errno ${String(resp['cr_errno'])}`)}`);
    return { s, rssKiB, cpuS, resp };
  } catch (e) {
    try {
      closeFd(ours);
    } catch {
      // closed already
    }
    throw e;
  }
}

/** Every pid of a dump (pstree.img), to wait until a killed tree is gone before its restore. */
function dumpedPids(imgs: string): number[] {
  return readImage(join(imgs, 'pstree.img')).entries.map((e) => Number(e['pid']));
}

function push(f: ToolFigures, m: Measured): void {
  f.s.push(m.s);
  f.rssKiB.push(m.rssKiB);
  f.cpuS.push(m.cpuS);
}

interface Subject {
  helper: string;
  args(readyFile: string): string[];
}

export interface Tools {
  ours: string;
  criu: string;
}

/**
 * One subject, dumped and restored by each tool in turn. Run 0 warms the
 * machine up (the VM's first touch of memory is slow) and is not counted.
 */
async function sideBySide(name: string, subject: Subject, runs: number, tools: Tools, target: SideCase['target'], lib: boolean): Promise<SideCase> {
  const exe = buildHelper(subject.helper);
  const c: SideCase = { name, runs, dump: newOp(), restore: newOp(), target };
  for (let i = 0; i <= runs; i++) {
    const keep = i > 0;
    const order: Who[] = i % 2 === 0 ? ['ours', 'criu', 'oursRpc', 'criuRpc'] : ['criu', 'ours', 'criuRpc', 'oursRpc'];
    if (lib) order.push('lib');
    for (const who of order) {
      const dir = shmDir(`vs-${subject.helper}`);
      try {
        status(`${name}, ${keep ? `run ${i}/${runs}` : 'warm-up'}: ${who}`);
        const h = await startHeld(exe, subject.args(join(dir, 'ready')), join(dir, 'ready'));
        const imgs = join(dir, 'img');
        const log = join(dir, 'log');
        try {
          execFileSync('mkdir', ['-p', imgs]);
          if (who === 'lib') {
            const t0 = nowS();
            await dump({ pid: h.pid, imagesDir: imgs, progress: false });
            const dt = nowS() - t0;
            await h.exited();
            const t1 = nowS();
            const r = await restore({ imagesDir: imgs, progress: false });
            const rt = nowS() - t1;
            await killRestored(r.pids);
            if (keep) {
              c.dump.lib.push(dt);
              c.restore?.lib.push(rt);
            }
            continue;
          }
          if (c.failed?.[who] !== undefined) continue;
          const bin = who === 'ours' || who === 'oursRpc' ? tools.ours : tools.criu;
          let d: Measured;
          let r: Measured;
          try {
            if (who === 'oursRpc' || who === 'criuRpc') {
              const dirFd = openSync(imgs, 'r');
              try {
                d = await rpc(bin, { type: 'DUMP', opts: { images_dir_fd: dirFd, pid: h.pid, log_file: 'dump.log' } }, log);
                await h.exited();
                await killRestored(dumpedPids(imgs));
                r = await rpc(bin, { type: 'RESTORE', opts: { images_dir_fd: dirFd, log_file: 'restore.log' } }, log);
                await killRestored(dumpedPids(imgs));
              } finally {
                closeSync(dirFd);
              }
              if (keep) {
                push(c.dump[who], d);
                if (c.restore) push(c.restore[who], r);
              }
              continue;
            }
            d = measure([bin, 'dump', '-t', String(h.pid), '-D', imgs, '-o', join(imgs, 'dump.log')], log, join(imgs, 'dump.log'));
            await h.exited();
            // The killed tree's orphans are ours (we are a subreaper): reap them, or their pids stay taken.
            await killRestored(dumpedPids(imgs));
            r = measure([bin, 'restore', '-d', '-D', imgs, '-o', join(imgs, 'restore.log')], log, join(imgs, 'restore.log'));
            await killRestored(dumpedPids(imgs));
          } catch (e) {
            c.failed = { ...c.failed, [who]: (e as Error).message.replace(/\s+/g, ' ').trim().slice(0, 160) };
            continue;
          }
          if (keep) {
            push(c.dump[who], d);
            if (c.restore) push(c.restore[who], r);
          }
        } finally {
          await killHeld(h);
        }
      } finally {
        removeDir(dir);
      }
    }
  }
  return c;
}

async function checkCase(runs: number, tools: Tools): Promise<SideCase> {
  const c: SideCase = { name: 'check', runs, dump: newOp(), target: { dump: 1.5 } };
  const dir = shmDir('vs-check');
  try {
    for (let i = 0; i <= runs; i++) {
      for (const who of i % 2 === 0 ? (['ours', 'criu'] as const) : (['criu', 'ours'] as const)) {
        status(`check, run ${i}/${runs}: ${who}`);
        const m = measure([who === 'ours' ? tools.ours : tools.criu, 'check'], join(dir, 'log'), join(dir, 'log'));
        if (i > 0) push(c.dump[who], m);
      }
    }
  } finally {
    removeDir(dir);
  }
  return c;
}

const mem = (mib: number): Subject => ({ helper: 'mem-hold', args: (ready) => [String(mib), ready] });
const tasks = (helper: string, n: number): Subject => ({ helper, args: (ready) => [String(n), ready] });

/** Every case of the speed issue; `quick` keeps one small run of each cheap case; `only`: the cases whose name holds it. */
export async function runVsCriu(tools: Tools, quick: boolean, only?: string): Promise<SideCase[]> {
  setChildSubreaper(true); // detached restored roots come back to us to be reaped
  const n = (full: number): number => (quick ? 1 : full);
  const cases: [string, () => Promise<SideCase>][] = [
    ['1 MiB process', () => sideBySide('1 MiB process', mem(1), n(7), tools, { dump: 1.5, restore: 1.5, lib: 0.5 }, true)],
    ['256 MiB process', () => sideBySide('256 MiB process', mem(256), n(5), tools, { dump: 1.0, restore: 1.0 }, !quick)],
  ];
  if (!quick) {
    cases.push(['1024 MiB process', () => sideBySide('1024 MiB process', mem(1024), 5, tools, { dump: 0.8, restore: 1.0 }, true)]);
    cases.push(['4096 MiB process', () => sideBySide('4096 MiB process', mem(4096), 3, tools, { dump: 0.8, restore: 1.0 }, false)]);
  }
  cases.push(
    ['100-process tree', () => sideBySide('100-process tree', tasks('tree-hold', 100), n(3), tools, { dump: 1.0, restore: 1.0 }, !quick)],
    ['1000-thread process', () => sideBySide('1000-thread process', tasks('thread-hold', 1000), n(3), tools, { dump: 1.0, restore: 1.0 }, !quick)],
    ['10,000 fds of mixed kinds', () => sideBySide('10,000 fds of mixed kinds', tasks('fds-hold', 10_000), n(3), tools, { dump: 1.0, restore: 1.0 }, !quick)],
    // zdtm maps06's shape (bench/c/vma-hold.c): a file page, an anonymous page, a PROT_NONE page, again and again.
    ['20,000 VMAs', () => sideBySide('20,000 VMAs', tasks('vma-hold', 20_000), n(3), tools, { dump: 1.0, restore: 1.0 }, !quick)],
    ['check', () => checkCase(n(7), tools)],
  );
  const out: SideCase[] = [];
  for (const [name, run] of cases) if (only === undefined || name.includes(only)) out.push(await run());
  return out;
}

const ms = (x: number): string => (Number.isFinite(x) ? (x < 1 ? `${(x * 1000).toFixed(1)} ms` : `${x.toFixed(2)} s`) : '-');
const mib = (kib: number): string => (kib > 0 ? `${(kib / 1024).toFixed(0)} MiB` : '-');
const spread = (xs: number[]): string => (xs.length > 1 ? ` (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})` : '');

export const VS_HEADER = [
  'case', 'op', 'runs', 'criu-ts CLI', 'CRIU 4.2 CLI', 'ratio', 'target', 'criu-ts RPC', 'CRIU RPC', 'RPC ratio',
  'criu-ts library', 'lib ratio', 'peak RSS criu-ts', 'peak RSS CRIU', 'CPU criu-ts CLI', 'CPU CRIU CLI', 'CPU ratio',
];

/** Table rows: medians (min–max), ratio to CRIU, and whether the target is met. */
export function vsRows(cases: readonly SideCase[]): string[][] {
  const rows: string[][] = [];
  for (const c of cases) {
    const ops: [string, OpFigures | undefined, number | undefined][] = [
      [c.restore ? 'dump' : 'run', c.dump, c.target.dump],
      ['restore', c.restore, c.target.restore],
    ];
    for (const [op, f, target] of ops) {
      if (!f) continue;
      const ours = median(f.ours.s);
      const criu = median(f.criu.s);
      const ratio = ours / criu;
      const lib = median(f.lib);
      const libRatio = lib / criu;
      const met = (r: number, t: number | undefined): string => (t === undefined || !Number.isFinite(r) ? '' : `<= ${t}x: ${r <= t ? 'met' : 'missed'}`);
      const failed = (who: Tool, text: string): string => (c.failed?.[who] !== undefined ? `failed (${c.failed[who]})` : text);
      const oursRpc = median(f.oursRpc.s);
      const criuRpc = median(f.criuRpc.s);
      const rpcRatio = oursRpc / criuRpc;
      // Peak RSS over every run of the tool, CLI and RPC.
      const oursRss = Math.max(0, ...f.ours.rssKiB, ...f.oursRpc.rssKiB);
      const criuRss = Math.max(0, ...f.criu.rssKiB, ...f.criuRpc.rssKiB);
      // CPU of the CLI runs (user+sys, their children included): the load changes it least.
      const oursCpu = median(f.ours.cpuS);
      const criuCpu = median(f.criu.cpuS);
      rows.push([
        c.name, op, String(c.runs), failed('ours', `${ms(ours)}${spread(f.ours.s)}`), failed('criu', `${ms(criu)}${spread(f.criu.s)}`),
        Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '-', met(ratio, target),
        f.oursRpc.s.length || c.failed?.oursRpc ? failed('oursRpc', `${ms(oursRpc)}${spread(f.oursRpc.s)}`) : '-',
        f.criuRpc.s.length || c.failed?.criuRpc ? failed('criuRpc', `${ms(criuRpc)}${spread(f.criuRpc.s)}`) : '-',
        Number.isFinite(rpcRatio) ? `${rpcRatio.toFixed(2)}x` : '-',
        f.lib.length ? ms(lib) : '-', f.lib.length ? `${libRatio.toFixed(2)}x${c.target.lib !== undefined ? ` (${met(libRatio, c.target.lib)})` : ''}` : '-',
        `${mib(oursRss)}${oursRss > 0 ? (oursRss < 64 * 1024 ? ' (< 64: met)' : ' (< 64: missed)') : ''}`,
        mib(criuRss),
        f.ours.cpuS.length ? ms(oursCpu) : '-', f.criu.cpuS.length ? ms(criuCpu) : '-',
        Number.isFinite(oursCpu / criuCpu) ? `${(oursCpu / criuCpu).toFixed(2)}x` : '-',
      ]);
    }
  }
  return rows;
}

/** The CRIU binary to compare with: --criu PATH, else $CRIU_BIN; undefined runs the plain baselines. */
export function criuBinFrom(argv: readonly string[]): string | undefined {
  const i = argv.indexOf('--criu');
  const given = i >= 0 ? argv[i + 1] : process.env['CRIU_BIN'];
  return given === undefined || given === '' ? undefined : given;
}

export function oursBin(): string {
  return join(repoRoot(), 'bin', 'criu-ts');
}
