/**
 * The bytes of vmh256's WebAssembly module (images/vmh.ts says the
 * algorithm and why it is built so): assembled here from opcodes, no tool
 * at build or run time. Three functions over one imported memory, whose
 * layout is below: blocks (1 KiB blocks into the lanes), final (the
 * digest of the lanes), digests (one digest per 64 KiB block).
 */
export const KIB = 1024;
/** bytes per block (16 stripes of 64) */
export const BLOCK = KIB;
export const KEY_AT = 0; // 16 stripe keys of 64 bytes
export const SCRAMBLE_AT = 1024; // 64 bytes: one word per lane
export const IV_AT = 1088; // 64 bytes: the lanes' start values
export const STATE_AT = 1152; // 64 bytes: the lanes while a call runs
export const PEND_AT = 2048; // 1 KiB: a partial block
export const OUT_AT = 4096; // digests written by a call: up to OUT_MAX of them
export const OUT_MAX = 1024;
/** Scratch: bytes from outside the module's memory are copied here to be hashed. */
export const SCRATCH_AT = 64 * KIB;
export const SCRATCH_BYTES = 1 << 20;
/** Two pairs of 1 MiB halves for pages writers (nested writers: a shared mapping's while a task's is open). */
export const HALVES_AT = SCRATCH_AT + SCRATCH_BYTES;
export const HALF_BYTES = 1 << 20;
export const HALF_PAIRS = 2;
export const MEMORY_PAGES = (HALVES_AT + HALF_PAIRS * 2 * HALF_BYTES) / (64 * KIB);

const PRIME = 0x9e3779b185ebca87n;
const FIN1 = 0xff51afd7ed558ccdn;
const FIN2 = 0xc4ceb9fe1a85ec53n;
const M64 = (1n << 64n) - 1n;

/** The constants: splitmix64 from a fixed seed (any odd-looking numbers would do; these are reproducible). */
export function vmhConstants(): { key: Buffer; scramble: Buffer; iv: Buffer; len: bigint[] } {
  let s = 0x243f6a8885a308d3n;
  const next = (): bigint => {
    s = (s + 0x9e3779b97f4a7c15n) & M64;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  };
  const words = (n: number): Buffer => {
    const b = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) b.writeBigUInt64LE(next(), i * 8);
    return b;
  };
  const key = words(128);
  const scramble = words(8);
  const iv = words(8);
  const len = Array.from({ length: 8 }, () => next() | 1n);
  return { key, scramble, iv, len };
}

// --- the module's bytes -------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb64(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asIntN(64, v);
  for (;;) {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    if ((x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const I32 = 0x7f;
const I64 = 0x7e;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, end: 0x0b, brIf: 0x0d, call: 0x10,
  get: 0x20, set: 0x21, tee: 0x22,
  i64Load: 0x29, i64Store: 0x37, i32Const: 0x41, i64Const: 0x42,
  i32Eqz: 0x45, i32Ne: 0x47, i32Add: 0x6a, i32Sub: 0x6b,
  i64Add: 0x7c, i64Mul: 0x7e, i64Xor: 0x85, i64ShrU: 0x88, i64Rotl: 0x89,
};
const simd = (n: number): number[] => [0xfd, ...uleb(n)];
const v128Load = (offset: number): number[] => [...simd(0x00), 4, ...uleb(offset)];
const v128Store = (offset: number): number[] => [...simd(0x0b), 4, ...uleb(offset)];
const i64Load = (offset: number): number[] => [op.i64Load, 3, ...uleb(offset)];
const i64Store = (offset: number): number[] => [op.i64Store, 3, ...uleb(offset)];
const i32c = (n: number): number[] => [op.i32Const, ...sleb64(BigInt(n))];
const i64c = (n: bigint): number[] => [op.i64Const, ...sleb64(n)];
const get = (l: number): number[] => [op.get, ...uleb(l)];
const set = (l: number): number[] => [op.set, ...uleb(l)];
const tee = (l: number): number[] => [op.tee, ...uleb(l)];
/** i8x16.shuffle putting 32-bit words `a`, `b` of a vector in words 0, 1 (2, 3 are don't-cares, the same) */
const words = (a: number, b: number): number[] => {
  const w = (i: number): number[] => [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3];
  return [...simd(0x0d), ...w(a), ...w(b), ...w(a), ...w(b)];
};
const WORDS_2_0 = words(2, 0);
const WORDS_3_1 = words(3, 1);
const V_XOR = simd(0x51);
const I64X2_ADD = simd(0xce);
const I64X2_MUL = simd(0xd5);
const I64X2_SHR_U = simd(0xcd);
const I64X2_SPLAT = simd(0x12);
const I64X2_EXTMUL_LOW_U = simd(0xde);

function func(locals: [number, number][], body: number[]): number[] {
  const decl = [...uleb(locals.length), ...locals.flatMap(([n, t]) => [...uleb(n), t])];
  const code = [...decl, ...body, op.end];
  return [...uleb(code.length), ...code];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

const str = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s, 'latin1')];

/** blocks(state, data, n): n blocks of 1 KiB at `data` into the lanes at `state`. */
function blocksBody(): number[] {
  // params 0 state, 1 data, 2 n; locals 3-6 a0..a3, 7 d, 8 x, 9 key, 10 prime
  const A = 3;
  const D = 7;
  const X = 8;
  const KEY = 9;
  const P = 10;
  const b: number[] = [];
  for (let v = 0; v < 4; v++) b.push(...get(0), ...v128Load(16 * v), ...set(A + v));
  b.push(...i64c(PRIME), ...I64X2_SPLAT, ...set(P));
  b.push(op.block, 0x40, ...get(2), op.i32Eqz, op.brIf, 0);
  b.push(op.loop, 0x40); // a block
  b.push(...i32c(KEY_AT), ...set(KEY));
  b.push(op.loop, 0x40); // a stripe
  for (let v = 0; v < 4; v++) {
    // a += d; x = d ^ key; a += (x2 * x3, x0 * x1)
    b.push(...get(1), ...v128Load(16 * v), ...tee(D), ...get(A + v), ...I64X2_ADD, ...set(A + v));
    b.push(...get(D), ...get(KEY), ...v128Load(16 * v), ...V_XOR, ...tee(X), ...get(X), ...WORDS_2_0);
    b.push(...get(X), ...get(X), ...WORDS_3_1, ...I64X2_EXTMUL_LOW_U, ...get(A + v), ...I64X2_ADD, ...set(A + v));
  }
  b.push(...get(1), ...i32c(64), op.i32Add, ...set(1));
  b.push(...get(KEY), ...i32c(64), op.i32Add, ...tee(KEY), ...i32c(KEY_AT + BLOCK), op.i32Ne, op.brIf, 0);
  b.push(op.end);
  for (let v = 0; v < 4; v++) {
    // a = ((a ^ a >> 47) ^ SCRAMBLE) * PRIME
    b.push(...get(A + v), ...get(A + v), ...i32c(47), ...I64X2_SHR_U, ...V_XOR);
    b.push(...i32c(SCRAMBLE_AT), ...v128Load(16 * v), ...V_XOR, ...get(P), ...I64X2_MUL, ...set(A + v));
  }
  b.push(...get(2), ...i32c(1), op.i32Sub, ...tee(2), op.brIf, 0);
  b.push(op.end, op.end);
  for (let v = 0; v < 4; v++) b.push(...get(0), ...get(A + v), ...v128Store(16 * v));
  return func([[4, V128], [2, V128], [1, I32], [1, V128]], b);
}

/** fin(x), the value on the stack, with local `x` as scratch. */
function fin(x: number): number[] {
  return [
    ...tee(x), ...get(x), ...i64c(33n), op.i64ShrU, op.i64Xor, ...i64c(FIN1), op.i64Mul,
    ...tee(x), ...get(x), ...i64c(29n), op.i64ShrU, op.i64Xor, ...i64c(FIN2), op.i64Mul,
    ...tee(x), ...get(x), ...i64c(32n), op.i64ShrU, op.i64Xor,
  ];
}

/** final(state, out, len): the 32-byte digest of the lanes at `state` after `len` bytes, to `out`. */
function finalBody(len: readonly bigint[]): number[] {
  // params 0 state, 1 out, 2 len; local 3 x
  const b: number[] = [];
  for (let j = 0; j < 4; j++) {
    b.push(...get(1));
    b.push(...get(0), ...i64Load(8 * j), ...get(2), ...i64c(len[j] as bigint), op.i64Mul, op.i64Xor, ...fin(3));
    b.push(...get(0), ...i64Load(8 * (j + 4)), ...get(2), ...i64c(len[j + 4] as bigint), op.i64Mul, op.i64Xor, ...fin(3));
    b.push(...i64c(23n), op.i64Rotl, op.i64Xor, ...i64Store(8 * j));
  }
  return func([[1, I64]], b);
}

export const BLOCK_DIGEST = 64 * KIB;

/** digests(data, n, out): the digest of each of n 64 KiB blocks at `data`, 32 bytes each to `out`. */
function digestsBody(): number[] {
  const b: number[] = [op.block, 0x40, ...get(1), op.i32Eqz, op.brIf, 0, op.loop, 0x40];
  for (let v = 0; v < 4; v++) b.push(...i32c(STATE_AT), ...i32c(IV_AT), ...v128Load(16 * v), ...v128Store(16 * v));
  b.push(...i32c(STATE_AT), ...get(0), ...i32c(BLOCK_DIGEST / BLOCK), op.call, 0);
  b.push(...i32c(STATE_AT), ...get(2), ...i64c(BigInt(BLOCK_DIGEST)), op.call, 1);
  b.push(...get(0), ...i32c(BLOCK_DIGEST), op.i32Add, ...set(0));
  b.push(...get(2), ...i32c(32), op.i32Add, ...set(2));
  b.push(...get(1), ...i32c(1), op.i32Sub, ...tee(1), op.brIf, 0, op.end, op.end);
  return func([], b);
}

export function moduleBytes(len: readonly bigint[]): Uint8Array {
  const types = vec([[0x60, ...vec([[I32], [I32], [I32]]), 0], [0x60, ...vec([[I32], [I32], [I64]]), 0]]);
  const imports = vec([[...str('m'), ...str('mem'), 0x02, 0x01, ...uleb(MEMORY_PAGES), ...uleb(MEMORY_PAGES)]]);
  const funcs = vec([[0], [1], [0]]);
  const exports = vec([[...str('blocks'), 0, 0], [...str('final'), 0, 1], [...str('digests'), 0, 2]]);
  const code = vec([blocksBody(), finalBody(len), digestsBody()]);
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, types), ...section(2, imports), ...section(3, funcs), ...section(7, exports), ...section(10, code),
  ]);
}

