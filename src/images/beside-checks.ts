/**
 * Pages files checked beside the fill (restore): a pages file with vmh256
 * block digests is not read up front. Each injected preadv that fills a
 * task from it runs while we read and check the blocks it reads
 * (`checkBeside`, the task's copy and ours on two cores), and before any
 * task runs `finishBesideChecks` checks the blocks nobody read. A
 * mismatch fails the restore there, which rolls back as any failed
 * restore does (every task created killed, every file created removed).
 * The file's size, its block layout and the digest over its blocks are
 * checked up front (`deferBlockChecks`), before anything is created.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CriuTsError } from '../errors.js';
import type { CriuTsChecksumEntry } from './messages.js';
import { CHECKSUMS_IMAGE, blockLayout, checkBlocks, refuseFreed } from './checksums.js';
import { vmhScratch } from './vmh.js';

interface Pending {
  path: string;
  e: CriuTsChecksumEntry;
  size: number;
  count: number;
  /** 1 for a block checked */
  done: Uint8Array;
}

const pending = new Map<string, Pending>();

/**
 * What one restore deferred: `finish()` checks the blocks nobody read yet,
 * `drop()` forgets them (a restore that ended, however); both touch only
 * this restore's files (restores in one process may overlap).
 */
export interface BesideChecks {
  finish(): void;
  drop(): void;
}

/**
 * Check these entries' files (of `dir`) beside the fill instead of now;
 * their size and layout are checked now. Returns the entries that could
 * not be deferred (a file another restore in this process has deferred):
 * the caller checks those now.
 */
export function deferBlockChecks(dir: string, entries: readonly CriuTsChecksumEntry[]): { checks: BesideChecks; notDeferred: CriuTsChecksumEntry[] } {
  const mine: Pending[] = [];
  const notDeferred: CriuTsChecksumEntry[] = [];
  const drop = (): void => {
    for (const p of mine) if (pending.get(resolve(p.path)) === p) pending.delete(resolve(p.path));
  };
  const checks: BesideChecks = {
    finish(): void {
      try {
        for (const p of mine) checkRun(p, 0, p.count - 1);
      } finally {
        drop();
      }
    },
    drop,
  };
  try {
    for (const e of entries) {
      const p = prepare(dir, e);
      const key = resolve(p.path);
      if (pending.has(key)) {
        notDeferred.push(e);
        continue;
      }
      pending.set(key, p);
      mine.push(p);
    }
  } catch (err) {
    drop();
    throw err;
  }
  return { checks, notDeferred };
}

function prepare(dir: string, e: CriuTsChecksumEntry): Pending {
  if (e.name.includes('/') || e.name === '' || e.name === '.' || e.name === '..') {
    throw new CriuTsError('EIMAGE', `${CHECKSUMS_IMAGE}: bad file name ${JSON.stringify(e.name)}`, { file: CHECKSUMS_IMAGE });
  }
  const path = join(dir, e.name);
  refuseFreed(path, e);
  const { size, count } = blockLayout(path, e);
  let st: bigint;
  try {
    const fd = openSync(path, 'r');
    try {
      st = BigInt(fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new CriuTsError('ENOIMAGE', `${path}: listed in ${CHECKSUMS_IMAGE} but cannot be read: ${(err as Error).message}`, { file: path }, err);
  }
  if (st !== BigInt(e.size)) {
    throw new CriuTsError('EIMAGE', `${path}: size ${st}, the dump wrote ${e.size} (${CHECKSUMS_IMAGE}; --skip-checksums to restore anyway)`, { file: path, field: 'size' });
  }
  return { path, e, size, count, done: new Uint8Array(count) };
}

/**
 * Check the blocks of `path` that bytes [start, end) lie in and that are
 * not checked yet (nothing for a file not deferred). `stop()`, asked
 * between runs: true to leave the rest unchecked for now (the call this
 * runs beside is over; a later call or finishBesideChecks checks them).
 */
export function checkBeside(path: string, start: bigint, end: bigint, stop?: () => boolean): void {
  const p = pending.get(resolve(path));
  if (p === undefined || end <= start) return;
  const bs = BigInt(p.size);
  checkRun(p, Number(start / bs), Math.min(p.count - 1, Number((end - 1n) / bs)), stop);
}

/** Read and check blocks first..last of `p` not done yet, in runs that fit the hash module's scratch. */
function checkRun(p: Pending, first: number, last: number, stop?: () => boolean): void {
  const buf = vmhScratch();
  if (buf === undefined) throw new CriuTsError('EIMAGE', `${p.path}: cannot be checked: vmh256 needs WebAssembly SIMD (--skip-checksums to restore anyway)`, { file: p.path });
  const per = Math.max(1, Math.floor(buf.length / p.size));
  const total = Number(p.e.size);
  let fd: number | undefined;
  try {
    for (let i = first; i <= last;) {
      if (p.done[i] === 1) {
        i++;
        continue;
      }
      let n = 1;
      while (i + n <= last && n < per && p.done[i + n] !== 1) n++;
      const want = Math.min(n * p.size, total - i * p.size);
      fd ??= openSync(p.path, 'r');
      let got = 0;
      while (got < want) {
        const r = readSync(fd, buf, got, want - got, i * p.size + got);
        if (r <= 0) throw new CriuTsError('EIMAGE', `${p.path}: ends at ${i * p.size + got}, the dump wrote ${p.e.size} bytes (${CHECKSUMS_IMAGE})`, { file: p.path, field: 'size' });
        got += r;
      }
      checkBlocks(p.path, p.e, i, buf.subarray(0, want));
      p.done.fill(1, i, i + n);
      i += n;
      if (stop?.() === true) return;
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
