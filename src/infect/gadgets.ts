/**
 * Instructions we borrow from a task's own executable memory, never writing
 * code into it:
 *
 * - `syscall`       0f 05        where injected syscalls run (any copy will do)
 * - `syscall; ret`  0f 05 c3     the same, followed by a return: after the
 *                                call the task returns through a stack we
 *                                prepared (see sigframe.ts)
 * - a sigreturn     48 c7 c0 0f 00 00 00 0f 05  (mov $15,%rax; syscall: the
 *                                signal restorer every libc has), or failing
 *                                that `pop %rax; ret` (58 c3) to load 15 itself
 *
 * The vDSO is searched first for a plain `syscall` (it is always there and
 * small); the others are usually in ld.so or libc. A task without them (a
 * static program without a libc restorer) can still be driven, only without
 * the self-cure of sigframe.ts.
 */
import { parseMaps } from '../proc/maps.js';
import { processVmReadv, ProcMapQuery } from '../sys/index.js';

export interface Gadgets {
  /** address of a `syscall` instruction */
  syscall: bigint;
  /** address of `syscall; ret`, if found */
  syscallRet?: bigint;
  /** address of `mov $15,%rax; syscall`, if found */
  sigreturn?: bigint;
  /** address of `pop %rax; ret`, if found (used when there is no sigreturn) */
  popRaxRet?: bigint;
}

const SYSCALL = Buffer.from([0x0f, 0x05]);
const SYSCALL_RET = Buffer.from([0x0f, 0x05, 0xc3]);
const SIGRETURN = Buffer.from([0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]);
const POP_RAX_RET = Buffer.from([0x58, 0xc3]);

/**
 * How much of one executable mapping we read per look, into one buffer
 * kept for every scan. Small on purpose: a fresh buffer the size of libc's
 * text (1.4 MB) was 340 first touches of pages per dump, about 4 ms of
 * CPU on a VM whose page faults are dear, for bytes looked at once; 22
 * process_vm_readv calls of 64 KiB into pages already ours cost a tenth of
 * that (docs/performance.md, "1 MiB through the CLI, session 15").
 */
const CHUNK_BYTES = 64 << 10;
/** Consecutive reads overlap by this much, so that a gadget across their border is still seen whole. */
const OVERLAP_BYTES = Math.max(SYSCALL.length, SYSCALL_RET.length, SIGRETURN.length, POP_RAX_RET.length) - 1;
let scanBuf: Buffer | undefined;

interface ExecMapping {
  start: bigint;
  end: bigint;
  name: string;
}

/** The task's executable mappings, the vDSO first ([vsyscall] left out: not readable, and it traps on execution). */
export function execMappings(tid: number): ExecMapping[] {
  const out = parseMaps(tid).filter((m) => m.prot.exec && m.path !== '[vsyscall]').map((m) => ({ start: m.start, end: m.end, name: m.path }));
  // The vDSO first: small, always mapped, never unmapped by the program.
  return out.sort((a, b) => Number(b.name === '[vdso]') - Number(a.name === '[vdso]'));
}

/**
 * Find the gadgets in a task's address space. `full` = false stops at the
 * first `syscall` (enough for a task we only create, as restore does).
 */
export function findGadgets(tid: number, full: boolean, avoid: readonly { start: bigint; end: bigint }[] = []): Gadgets | undefined {
  // The processes of a tree mostly share their executable mappings (fork):
  // gadgets found in one are tried first in the next, each checked in this
  // task's own memory, so a hit is as sound as a scan. The kernel says
  // whether each lies in an executable mapping (PROCMAP_QUERY), with no
  // read of the task's whole maps; without that, the maps decide.
  const reused = avoid.length === 0 ? reuseRecent(tid, full) : undefined;
  if (reused !== undefined) return { ...reused };
  const maps = execMappings(tid);
  const key = avoid.length === 0 ? `${full ? 'full' : 'min'} ${maps.map((m) => `${m.start.toString(16)}-${m.end.toString(16)} ${m.name}`).join(' ')}` : undefined;
  const cached = key === undefined ? undefined : recent.get(key);
  if (cached !== undefined && stillThere(tid, cached)) return { ...cached };
  const found = scan(tid, full, maps, avoid);
  if (key !== undefined && found !== undefined) {
    if (recent.size >= 16) recent.clear();
    recent.set(key, found);
  }
  return found;
}

/** Gadgets found lately, by the exec mappings they were found among. */
const recent = new Map<string, Gadgets>();

/** Gadgets found lately that this task has too, in executable mappings (PROCMAP_QUERY); undefined when none or the kernel cannot say. */
function reuseRecent(tid: number, full: boolean): Gadgets | undefined {
  const kind = full ? 'full ' : 'min ';
  const candidates = [...recent].filter(([k]) => k.startsWith(kind)).map(([, g]) => g).reverse();
  if (candidates.length === 0) return undefined;
  let q: ProcMapQuery;
  try {
    q = new ProcMapQuery(tid);
  } catch {
    return undefined;
  }
  try {
    for (const g of candidates) {
      const exec = allExecutable(q, g);
      if (exec === undefined) return undefined;
      if (exec && stillThere(tid, g)) return g;
    }
    return undefined;
  } finally {
    q.close();
  }
}

function allExecutable(q: ProcMapQuery, g: Gadgets): boolean | undefined {
  for (const [at, pat] of patterns(g)) {
    const r = q.executableAt(at, pat.length);
    if (r !== true) return r;
  }
  return true;
}

/** Each gadget's address with the bytes it must hold. */
function patterns(g: Gadgets): [bigint, Buffer][] {
  const out: [bigint, Buffer][] = [];
  for (const [at, pat] of [[g.syscall, SYSCALL], [g.syscallRet, SYSCALL_RET], [g.sigreturn, SIGRETURN], [g.popRaxRet, POP_RAX_RET]] as const) {
    if (at !== undefined) out.push([at, pat]);
  }
  return out;
}

/** Whether this task has the same gadgets at the same addresses: all of them read in one process_vm_readv. */
function stillThere(tid: number, g: Gadgets): boolean {
  const want = patterns(g);
  const total = want.reduce((n, [, pat]) => n + pat.length, 0);
  const b = Buffer.alloc(total);
  try {
    if (processVmReadv(tid, b, 0, want.map(([at, pat]) => ({ addr: at, len: pat.length }))) !== total) return false;
  } catch {
    return false;
  }
  let off = 0;
  for (const [, pat] of want) {
    if (!b.subarray(off, off + pat.length).equals(pat)) return false;
    off += pat.length;
  }
  return true;
}

function scan(tid: number, full: boolean, maps: readonly ExecMapping[], avoid: readonly { start: bigint; end: bigint }[]): Gadgets | undefined {
  let syscall: bigint | undefined;
  const g: Omit<Gadgets, 'syscall'> = {};
  // `pop %rax; ret` only where there is no restorer at all: a scan of 64 KiB looks that stopped at the first would miss a later restorer.
  const done = (): boolean => syscall !== undefined && (!full || (g.syscallRet !== undefined && g.sigreturn !== undefined));
  scanBuf ??= Buffer.allocUnsafe(CHUNK_BYTES);
  const buf = scanBuf;
  for (const m of maps) {
    if (avoid.some((r) => m.start < r.end && r.start < m.end)) continue;
    for (let at = m.start; at < m.end && !done(); at += BigInt(CHUNK_BYTES - OVERLAP_BYTES)) {
      const len = Number(m.end - at < BigInt(CHUNK_BYTES) ? m.end - at : BigInt(CHUNK_BYTES));
      let n = 0;
      try {
        n = processVmReadv(tid, buf, 0, [{ addr: at, len }]);
      } catch {
        break;
      }
      const b = buf.subarray(0, n);
      const look = (pat: Buffer): bigint | undefined => {
        const i = b.indexOf(pat);
        return i >= 0 ? at + BigInt(i) : undefined;
      };
      syscall ??= look(SYSCALL);
      if (full) {
        g.syscallRet ??= look(SYSCALL_RET);
        g.sigreturn ??= look(SIGRETURN);
        g.popRaxRet ??= look(POP_RAX_RET);
      }
      // The mapping's end read (or all of it that can be): the overlap would only read its tail again.
      if (n < len || at + BigInt(len) >= m.end) break;
    }
    if (done()) break;
  }
  return syscall === undefined ? undefined : { syscall, ...g };
}
