/**
 * x86_64 register layouts as the kernel's ptrace regsets give them.
 * user_regs_struct (NT_PRSTATUS): 27 u64 in this order; CRIU's
 * user_x86_regs_entry uses the same order and names without the 'r' prefix.
 */

export const GP_REG_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'bp', 'bx', 'r11', 'r10', 'r9', 'r8', 'ax', 'cx', 'dx', 'si', 'di',
  'orig_ax', 'ip', 'cs', 'flags', 'sp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;

export type GpRegName = (typeof GP_REG_NAMES)[number];
export type GpRegs = Record<GpRegName, bigint>;

export const USER_REGS_SIZE = GP_REG_NAMES.length * 8; // 216

const INDEX: Readonly<Record<GpRegName, number>> = Object.fromEntries(
  GP_REG_NAMES.map((n, i) => [n, i]),
) as Record<GpRegName, number>;

export function regOffset(name: GpRegName): number {
  return INDEX[name] * 8;
}

export function decodeGpRegs(buf: Buffer): GpRegs {
  const out = {} as GpRegs;
  GP_REG_NAMES.forEach((n, i) => (out[n] = buf.readBigUInt64LE(i * 8)));
  return out;
}

export function encodeGpRegs(regs: GpRegs, buf: Buffer = Buffer.alloc(USER_REGS_SIZE)): Buffer {
  GP_REG_NAMES.forEach((n, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, regs[n]), i * 8));
  return buf;
}

/** CS selector values: 0x33 is 64-bit user code, 0x23 is the 32-bit compat segment. */
export const USER_CS_64 = 0x33n;
export const USER32_CS = 0x23n;

/**
 * XSAVE standard (non-compacted) layout, what NT_X86_XSTATE reads and writes.
 * Legacy area 0..511 is the FXSAVE image (user_i387_struct), header at 512.
 */
export const XSAVE = {
  cwd: 0, // u16
  swd: 2, // u16
  twd: 4, // u16 (abridged tag in u8 + reserved)
  fop: 6, // u16
  rip: 8, // u64
  rdp: 16, // u64
  mxcsr: 24, // u32
  mxcsrMask: 28, // u32
  stSpace: 32, // 32 x u32 (8 regs x 16 bytes)
  xmmSpace: 160, // 64 x u32 (16 regs x 16 bytes)
  padding: 416, // 24 x u32 (bytes 464..511 carry sw_reserved: xstate size info)
  swReserved: 464,
  headerXstateBv: 512, // u64
  headerXcompBv: 520, // u64
  // Components 2 and up: offsets come from CPUID leaf 0xD (sys/xstate.ts), never fixed.
} as const;

/** XFEATURE bits in xstate_bv. */
export const XFEATURE = {
  FP: 1n << 0n,
  SSE: 1n << 1n,
  YMM: 1n << 2n,
  BNDREGS: 1n << 3n,
  BNDCSR: 1n << 4n,
  OPMASK: 1n << 5n,
  ZMM_HI256: 1n << 6n,
  HI16_ZMM: 1n << 7n,
  PKRU: 1n << 9n,
  CET_USER: 1n << 11n,
} as const;

/** "syscall" instruction bytes; any such byte pair in executable memory is a usable gadget. */
export const SYSCALL_INSN = Buffer.from([0x0f, 0x05]);
/** syscall; int3 — what we place in a page we own so each injected call ends in a trap. */
export const SYSCALL_TRAP_INSN = Buffer.from([0x0f, 0x05, 0xcc]);

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12n;
