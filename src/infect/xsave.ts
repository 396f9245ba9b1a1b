/**
 * The XSAVE area of a thread (x87, SSE, AVX, MPX, AVX-512, PKRU) and CRIU's
 * user_x86_fpregs_entry / user_x86_xsave_entry (images/core-x86.proto).
 *
 * The kernel hands the area over ptrace (NT_X86_XSTATE) in the standard
 * format. Its legacy part and header are fixed; every other component sits
 * where CPUID leaf 0xD says on *this* CPU (sys/xstate.ts). Dump copies each
 * component the OS enabled (XCR0) into CRIU's field for it, sized as CRIU
 * expects (it checks the counts on restore), whether or not the component is
 * in use (xstate_bv says which are). Restore starts from the kernel's own
 * buffer for the thread (the restore CPU's layout) and puts each image field
 * at this CPU's offset.
 *
 * Limits: components CRIU has no field for (AMX tile state, APX, ...) are
 * refused at dump when in use, and dropped (left in their initial state)
 * when a CRIU image says they were in use but carries no data. An image
 * whose state in use needs a component this CPU lacks is refused at restore.
 * CET shadow-stack state (field 9) is neither dumped nor restored.
 */
import type { UserX86FpregsEntry, UserX86XsaveEntry } from '../images/messages.js';
import { CriuTsError } from '../errors.js';
import { XSAVE, XSAVE_LEGACY_AND_HEADER_BYTES, xcr0Of, type XstateLayout } from '../sys/index.js';

type ArrayField = 'ymmh_space' | 'bndreg_state' | 'bndcsr_state' | 'opmask_reg' | 'zmm_upper' | 'hi16_zmm' | 'pkru';

interface CriuComponent {
  bit: number;
  name: string;
  field: ArrayField;
  /** Bytes per array element in the image (uint32 or uint64). */
  elt: 4 | 8;
  /** Size of the component, as CRIU's image holds it (CRIU refuses a CPU that reports another). */
  size: number;
}

/** The components CRIU's image has a field for, in field order. */
const CRIU_COMPONENTS: readonly CriuComponent[] = [
  { bit: 2, name: 'AVX upper halves of ymm0-15', field: 'ymmh_space', elt: 4, size: 256 },
  { bit: 3, name: 'MPX bound registers', field: 'bndreg_state', elt: 8, size: 64 },
  { bit: 4, name: 'MPX BNDCFGU/BNDSTATUS', field: 'bndcsr_state', elt: 8, size: 64 },
  { bit: 5, name: 'AVX-512 opmask k0-k7', field: 'opmask_reg', elt: 8, size: 64 },
  { bit: 6, name: 'AVX-512 upper halves of zmm0-15', field: 'zmm_upper', elt: 8, size: 512 },
  { bit: 7, name: 'AVX-512 zmm16-31', field: 'hi16_zmm', elt: 8, size: 1024 },
  { bit: 9, name: 'PKRU (protection keys)', field: 'pkru', elt: 4, size: 8 },
];

/** Names of user components CRIU's image cannot carry, for refusals. */
const OTHER_NAMES: Readonly<Record<number, string>> = {
  17: 'AMX tile configuration (XTILECFG)',
  18: 'AMX tile data (XTILEDATA)',
  19: 'APX extended general registers',
};

/** x87 and SSE: always in the legacy area, never in the extended part. */
const LEGACY_BITS = 3n;
/** AVX is at 576 in the standard format of every CPU; used only when CPUID cannot be read. */
const AVX_ONLY_LAYOUT_OFFSET = 576;

function componentName(bit: number): string {
  return CRIU_COMPONENTS.find((c) => c.bit === bit)?.name ?? OTHER_NAMES[bit] ?? `XSAVE component ${bit}`;
}

/** Offset of a component in the standard format, or undefined when neither CPUID nor the architecture says. */
function offsetOf(layout: XstateLayout | undefined, bit: number): { offset: number; size: number } | undefined {
  const c = layout?.components.get(bit);
  if (c) return c;
  if (bit === 2 && layout === undefined) return { offset: AVX_ONLY_LAYOUT_OFFSET, size: 256 };
  return undefined;
}

/**
 * `count` words at `off`. A plain loop, not Array.from over an array-like
 * (its generic path was a tenth of a 1000-thread dump's own CPU: about 400
 * words per thread), and a 64-bit word as one bigint, the common zero as 0n.
 */
function readWords(x: Buffer, off: number, elt: 4 | 8, count: number): number[] | bigint[] {
  if (elt === 4) {
    const words: number[] = new Array<number>(count);
    for (let i = 0; i < count; i++) words[i] = x.readUInt32LE(off + i * 4);
    return words;
  }
  const words: bigint[] = new Array<bigint>(count);
  for (let i = 0; i < count; i++) {
    const lo = x.readUInt32LE(off + i * 8);
    const hi = x.readUInt32LE(off + i * 8 + 4);
    words[i] = hi === 0 && lo === 0 ? 0n : hi < 0x200000 ? BigInt(hi * 0x100000000 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
  }
  return words;
}

function u32s(x: Buffer, off: number, count: number): number[] {
  return readWords(x, off, 4, count) as number[];
}

/**
 * CRIU's fpregs entry from a thread's ptrace XSAVE buffer. `who` names the
 * thread in refusals ("task 42 thread 43").
 */
export function xsaveToFpregs(x: Buffer, layout: XstateLayout | undefined, who: string): UserX86FpregsEntry {
  const fp: UserX86FpregsEntry = {
    cwd: x.readUInt16LE(XSAVE.cwd),
    swd: x.readUInt16LE(XSAVE.swd),
    twd: x.readUInt16LE(XSAVE.twd),
    fop: x.readUInt16LE(XSAVE.fop),
    rip: x.readBigUInt64LE(XSAVE.rip),
    rdp: x.readBigUInt64LE(XSAVE.rdp),
    mxcsr: x.readUInt32LE(XSAVE.mxcsr),
    mxcsr_mask: x.readUInt32LE(XSAVE.mxcsrMask),
    st_space: u32s(x, XSAVE.stSpace, 32),
    xmm_space: u32s(x, XSAVE.xmmSpace, 64),
    // `padding` (the software-reserved bytes 464..511) is left out, as CRIU does: the kernel fills them.
  };
  if (x.length <= XSAVE_LEGACY_AND_HEADER_BYTES) return fp;
  const xcr0 = xcr0Of(x);
  const inUse = x.readBigUInt64LE(XSAVE.headerXstateBv);
  const xs: UserX86XsaveEntry = { xstate_bv: inUse };
  const carried = new Set<number>();
  for (const c of CRIU_COMPONENTS) {
    if ((xcr0 & (1n << BigInt(c.bit))) === 0n) continue;
    const where = offsetOf(layout, c.bit);
    if (where === undefined) {
      throw new CriuTsError('EUNSUPPORTED', `${who}: cannot place ${c.name} in the XSAVE area: CPUID leaf 0xD is unreadable (/dev/cpu/0/cpuid missing: modprobe cpuid)`, { component: c.bit });
    }
    if (where.size !== c.size || where.offset + where.size > x.length) {
      throw new CriuTsError('EUNSUPPORTED', `${who}: ${c.name}: this CPU reports ${where.size} bytes at ${where.offset}, CRIU's image holds ${c.size}`, { component: c.bit });
    }
    (xs as unknown as Record<string, unknown>)[c.field] = readWords(x, where.offset, c.elt, c.size / c.elt);
    carried.add(c.bit);
  }
  // State in use that no image field can carry would be lost: refuse it.
  for (let bit = 2; bit < 64; bit++) {
    if ((inUse & (1n << BigInt(bit))) !== 0n && !carried.has(bit)) {
      throw new CriuTsError('EUNSUPPORTED', `${who}: ${componentName(bit)} is in use; CRIU's image has no field for it`, { component: bit });
    }
  }
  fp.xsave = xs;
  return fp;
}

/**
 * A copy of `template` (the kernel's XSAVE buffer of the thread being
 * restored, in this CPU's layout) filled from an image's fpregs: the buffer
 * to write back with PTRACE_SETREGSET.
 */
export function fpregsToXsave(template: Buffer, fp: UserX86FpregsEntry, layout: XstateLayout | undefined, who: string): Buffer {
  return fillXsave(Buffer.from(template), fp, layout, who);
}

/**
 * The same in place: `x` (the kernel's XSAVE buffer, read into a buffer
 * of ours that nothing else needs) is filled and returned. The restore
 * fills the regset read buffer itself: a copy per thread was 10.5 MiB of
 * garbage in a 1000-thread restore.
 */
export function fillXsave(x: Buffer, fp: UserX86FpregsEntry, layout: XstateLayout | undefined, who: string): Buffer {
  x.writeUInt16LE(fp.cwd & 0xffff, XSAVE.cwd);
  x.writeUInt16LE(fp.swd & 0xffff, XSAVE.swd);
  x.writeUInt16LE(fp.twd & 0xffff, XSAVE.twd);
  x.writeUInt16LE(fp.fop & 0xffff, XSAVE.fop);
  x.writeBigUInt64LE(fp.rip, XSAVE.rip);
  x.writeBigUInt64LE(fp.rdp, XSAVE.rdp);
  x.writeUInt32LE(fp.mxcsr, XSAVE.mxcsr);
  x.writeUInt32LE(fp.mxcsr_mask, XSAVE.mxcsrMask);
  (fp.st_space ?? []).slice(0, 32).forEach((w, i) => x.writeUInt32LE(w, XSAVE.stSpace + i * 4));
  (fp.xmm_space ?? []).slice(0, 64).forEach((w, i) => x.writeUInt32LE(w, XSAVE.xmmSpace + i * 4));
  if (x.length <= XSAVE_LEGACY_AND_HEADER_BYTES) return x;
  const xcr0 = xcr0Of(x);
  const xs = fp.xsave;
  // Without an xsave entry the image has x87/SSE only: everything else starts in its initial state.
  let bv = xs ? xs.xstate_bv & LEGACY_BITS : LEGACY_BITS;
  for (const c of xs ? CRIU_COMPONENTS : []) {
    const bit = 1n << BigInt(c.bit);
    const words = (xs as unknown as Record<string, number[] | bigint[] | undefined>)[c.field];
    const used = ((xs as UserX86XsaveEntry).xstate_bv & bit) !== 0n;
    if (!used) continue; // initial state: the kernel clears what xstate_bv leaves out
    if (words === undefined || words.length === 0) continue; // in use but not carried (CRIU does the same)
    if ((xcr0 & bit) === 0n) {
      throw new CriuTsError('EUNSUPPORTED', `${who}: the image holds ${c.name} in use; this CPU (or kernel) does not enable it`, { component: c.bit });
    }
    const where = offsetOf(layout, c.bit);
    if (where === undefined || where.size !== c.size) {
      throw new CriuTsError('EUNSUPPORTED', `${who}: cannot place ${c.name} in this CPU's XSAVE area (CPUID leaf 0xD unreadable or a different size)`, { component: c.bit });
    }
    if (words.length * c.elt < c.size) {
      throw new CriuTsError('EIMAGE', `${who}: ${c.field} holds ${words.length} words, ${c.size / c.elt} expected`, { component: c.bit });
    }
    for (let i = 0; i < c.size / c.elt; i++) {
      if (c.elt === 4) x.writeUInt32LE(Number(words[i]), where.offset + i * 4);
      else x.writeBigUInt64LE(BigInt(words[i] as bigint), where.offset + i * 8);
    }
    bv |= bit;
  }
  x.writeBigUInt64LE(bv, XSAVE.headerXstateBv);
  return x;
}
