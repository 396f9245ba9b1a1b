/**
 * Fault injection, as CRIU's CRIU_FAULT: every place where a dump or a
 * restore can be made to fail on purpose is listed here, numbered, once.
 *
 *   CRIU_TS_FAULT=N         point N (table below) fails at its first pass with
 *                           EINTERNAL "fault N injected"; the dump or restore
 *                           must then undo everything, as for any error
 *   CRIU_TS_FAULT=@K[:SIG]  at the K-th pass through any point (counted
 *                           from 1, in order, injected syscalls included),
 *                           criu-ts sends itself SIG (default SIGKILL): how
 *                           the tests kill it at exact moments
 *   CRIU_TS_FAULT=@NAME[#K][:SIG]  the same at the K-th (default first)
 *                           pass through the point NAME
 *   CRIU_TS_FAULT=count     at exit, print "fault passes: N: NAME..." on stderr
 *   CRIU_TS_FAULT=A,B       several of the above at once (a failure, then a
 *                           kill in the undo it starts: "4,@inject#40")
 *
 * Unset, a point costs one comparison.
 */
import { writeSync } from 'node:fs';
import { CriuTsError } from './errors.js';

/** The fault points, in the order a dump and then a restore meet them. Numbers are positions + 1. */
export const FAULT_POINTS = [
  'dump.seized', // 1  every task of the tree stopped
  'dump.self-cure', // 2  a process's threads armed with their self-cure frames
  'dump.task', // 3  a process's core, registers and state written
  'dump.memory', // 4  a process's pages written
  'dump.files', // 5  a process's files written
  'dump.images', // 6  every image written, the tree not yet released
  'cure', // 7  a thread about to be cured (scratch unmapped, registers back)
  'inject', // 8  registers set for an injected syscall, not yet run
  'restore.planned', // 9  images read, plan made, nothing created yet
  'restore.ghosts', // 10 ghost files written back to disk (after restore.stub when the tree has its own mount namespace)
  'restore.stub', // 11 the stub started and seized
  'restore.created', // 12 every task of the tree created
  'restore.task', // 13 a task's memory, files and state restored
  'restore.finish', // 14 every task restored, not yet released
  // Added later, numbered after the rest (numbers stay stable):
  'mqueue', // 15 a dump reading a message queue: its messages out of it, not yet back (kinds/ns/mqueue-keeper.ts)
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

interface FaultConfig {
  fail?: number;
  killAt?: number;
  killName?: string;
  signal?: NodeJS.Signals;
  count: boolean;
}

function parse(v: string | undefined): FaultConfig[] | undefined {
  if (v === undefined || v === '') return undefined;
  return v.split(',').map(parseOne);
}

function parseOne(v: string): FaultConfig {
  if (v === 'count') return { count: true };
  const kill = /^@(\d+)(?::(SIG[A-Z]+))?$/.exec(v);
  if (kill) return { killAt: Number(kill[1]), signal: (kill[2] ?? 'SIGKILL') as NodeJS.Signals, count: false };
  const named = /^@([a-z.-]+)(?:#(\d+))?(?::(SIG[A-Z]+))?$/.exec(v);
  if (named && (FAULT_POINTS as readonly string[]).includes(named[1] ?? '')) {
    return { killName: named[1], killAt: Number(named[2] ?? 1), signal: (named[3] ?? 'SIGKILL') as NodeJS.Signals, count: false };
  }
  if (/^\d+$/.test(v)) return { fail: Number(v), count: false };
  throw new CriuTsError('EUSAGE', `CRIU_TS_FAULT=${v}: expected N, @K[:SIGNAL] or count`, { value: v });
}

let config: FaultConfig[] | undefined | null = null;
let passes = 0;
const passesByName = new Map<string, number>();
const seen: string[] = [];
const failed = new Set<number>();

function cfg(): FaultConfig[] | undefined {
  if (config === null) {
    config = parse(process.env['CRIU_TS_FAULT']);
    if (config?.some((c) => c.count)) process.on('exit', () => writeSync(2, `fault passes: ${passes}: ${seen.join(' ')}\n`));
  }
  return config;
}

/** A place where a dump or restore may be made to fail (see the table above). */
export function faultPoint(name: FaultPoint): void {
  const cs = cfg();
  if (cs === undefined) return;
  passes++;
  const byName = (passesByName.get(name) ?? 0) + 1;
  passesByName.set(name, byName);
  for (const c of cs) {
    if (c.count) seen.push(name);
    if (c.killName !== undefined) {
      if (c.killName === name && c.killAt === byName) process.kill(process.pid, c.signal);
    } else if (c.killAt === passes) {
      process.kill(process.pid, c.signal);
    }
  }
  for (const c of cs) {
    if (c.fail !== undefined && FAULT_POINTS[c.fail - 1] === name && !failed.has(c.fail)) {
      failed.add(c.fail);
      throw new CriuTsError('EINTERNAL', `fault ${c.fail} (${name}) injected by CRIU_TS_FAULT`, { fault: c.fail, point: name });
    }
  }
}
