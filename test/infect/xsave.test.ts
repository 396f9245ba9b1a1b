/**
 * XSAVE components placed by CPUID, not by fixed offsets: an area dumped on
 * a CPU laid out like an AMD EPYC (no MPX: opmask at 832) restores into the
 * layout of an Intel CPU (opmask at 1088), and the other way round; state
 * in use that CRIU's image cannot carry is refused; this machine's own
 * layout agrees with what the kernel hands over ptrace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fpregsToXsave, xsaveToFpregs } from '../../src/infect/xsave.js';
import {
  xstateLayout, xstateLayoutFrom, xcr0Of, ptraceGetRegset, ptraceSeize, ptraceInterrupt, waitPid, __WALL, NT_X86_XSTATE,
  type CpuidFn, type XstateLayout,
} from '../../src/sys/index.js';
import { isCriuTsError } from '../../src/errors.js';
import { Tracee } from '../../src/infect/tracee.js';
import { cpuidThroughTracee } from '../../src/infect/cpuid.js';
import { cpuidFromDevice, getGpRegsRaw } from '../../src/sys/index.js';

/** A fake CPUID leaf 0xD: component bit -> [offset, size]. */
function fakeCpuid(components: Record<number, [number, number]>): CpuidFn {
  let mask = 3;
  for (const b of Object.keys(components)) mask |= 1 << Number(b);
  const end = Math.max(576, ...Object.values(components).map(([o, s]) => o + s));
  return (leaf, sub) => {
    if (leaf !== 0xd) return { eax: 0, ebx: 0, ecx: 0, edx: 0 };
    if (sub === 0) return { eax: mask, ebx: end, ecx: end, edx: 0 };
    const c = components[sub];
    return c ? { eax: c[1], ebx: c[0], ecx: 0, edx: 0 } : { eax: 0, ebx: 0, ecx: 0, edx: 0 };
  };
}

const AMD: XstateLayout = xstateLayoutFrom(fakeCpuid({ 2: [576, 256], 5: [832, 64], 6: [896, 512], 7: [1408, 1024], 9: [2432, 8] }), 'test');
const INTEL: XstateLayout = xstateLayoutFrom(fakeCpuid({ 2: [576, 256], 5: [1088, 64], 6: [1152, 512], 7: [1664, 1024] }), 'test');

/** A ptrace-style buffer for a layout: XCR0 copy at 464, xstate_bv in the header, each component filled with its bit number. */
function area(layout: XstateLayout, xcr0: bigint, inUse: bigint): Buffer {
  const size = Math.max(576, ...[...layout.components.values()].map((c) => c.offset + c.size));
  const x = Buffer.alloc(size);
  x.writeBigUInt64LE(xcr0, 464);
  x.writeBigUInt64LE(inUse, 512);
  for (const c of layout.components.values()) {
    for (let i = 0; i < c.size; i++) x[c.offset + i] = (c.bit * 16 + i) & 0xff;
  }
  return x;
}

test('AVX-512 state dumped with an AMD layout lands at the Intel offsets on restore', () => {
  const feats = 0xe7n; // x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  const fp = xsaveToFpregs(area(AMD, feats | 0x200n, feats), AMD, 'test');
  assert.equal(fp.xsave?.opmask_reg?.length, 8);
  assert.equal(fp.xsave?.zmm_upper?.length, 64);
  assert.equal(fp.xsave?.hi16_zmm?.length, 128);
  assert.equal(fp.xsave?.pkru?.length, 2, 'PKRU enabled in XCR0: its field is written, as CRIU does');
  assert.equal(fp.xsave?.bndreg_state, undefined, 'no MPX field for a CPU without MPX');
  const template = Buffer.alloc(2752);
  template.writeBigUInt64LE(feats, 464);
  const out = fpregsToXsave(template, fp, INTEL, 'test');
  const src = area(AMD, feats, feats);
  for (const bit of [2, 5, 6, 7]) {
    const from = AMD.components.get(bit);
    const to = INTEL.components.get(bit);
    assert.ok(from && to);
    assert.ok(src.subarray(from.offset, from.offset + from.size).equals(out.subarray(to.offset, to.offset + to.size)), `component ${bit}`);
  }
  assert.equal(out.readBigUInt64LE(512), feats, 'xstate_bv as dumped');
});

test('a component in use that this CPU does not enable is refused at restore', () => {
  const fp = xsaveToFpregs(area(AMD, 0x2e7n, 0x207n), AMD, 'test'); // PKRU in use
  const template = Buffer.alloc(2752);
  template.writeBigUInt64LE(0xe7n, 464); // no PKRU here
  assert.throws(() => fpregsToXsave(template, fp, INTEL, 'thread 7'), (e: unknown) => isCriuTsError(e) && /thread 7: .*PKRU/.test(e.message));
});

test('a component in use that CRIU cannot carry (AMX tile data) is refused at dump', () => {
  const amx = xstateLayoutFrom(fakeCpuid({ 2: [576, 256], 17: [2752, 64], 18: [2816, 8192] }), 'test');
  const x = area(amx, 0x60007n, 0x40007n);
  assert.throws(() => xsaveToFpregs(x, amx, 'task 5'), (e: unknown) => isCriuTsError(e) && e.code === 'EUNSUPPORTED' && /task 5: AMX tile data/.test(e.message));
  // Enabled but in its initial state: nothing is lost, the dump goes on.
  assert.doesNotThrow(() => xsaveToFpregs(area(amx, 0x60007n, 0x7n), amx, 'task 5'));
});

test('an image without xsave restores x87/SSE and leaves the rest in its initial state', () => {
  const fp = xsaveToFpregs(area(INTEL, 0xe7n, 0xe7n), INTEL, 'test');
  delete fp.xsave;
  const out = fpregsToXsave(area(INTEL, 0xe7n, 0xe7n), fp, INTEL, 'test');
  assert.equal(out.readBigUInt64LE(512), 3n);
});

test("this CPU's CPUID layout covers every component the kernel enables over ptrace", async (t) => {
  const layout = xstateLayout();
  if (layout === undefined) {
    t.skip('CPUID leaf 0xD unreadable here (no /dev/cpu/0/cpuid)');
    return;
  }
  const child = spawn('/usr/bin/sleep', ['5'], { stdio: 'ignore' });
  const pid = child.pid as number;
  try {
    ptraceSeize(pid, 0);
    ptraceInterrupt(pid);
    waitPid(pid, __WALL);
    const x = ptraceGetRegset(pid, NT_X86_XSTATE, 16384);
    const xcr0 = xcr0Of(x);
    for (let bit = 2; bit < 64; bit++) {
      if ((xcr0 & (1n << BigInt(bit))) === 0n) continue;
      const c = layout.components.get(bit);
      assert.ok(c, `XCR0 bit ${bit} enabled but CPUID describes no user component`);
      assert.ok(c.offset + c.size <= x.length, `component ${bit} ends at ${c.offset + c.size}, past the ${x.length}-byte ptrace area`);
    }
    // A live area round-trips through the image fields unchanged (where components are in use).
    const fp = xsaveToFpregs(x, layout, 'sleep');
    const back = fpregsToXsave(x, fp, layout, 'sleep');
    assert.ok(back.subarray(0, 464).equals(x.subarray(0, 464)), 'legacy area');
    assert.equal(back.readBigUInt64LE(512), x.readBigUInt64LE(512), 'xstate_bv');
  } finally {
    child.kill('SIGKILL');
  }
});

test('cpuid run inside a traced task (no cpuid driver needed) answers as the driver does, registers untouched', async (t) => {
  const dev = cpuidFromDevice();
  const child = spawn('/usr/bin/sleep', ['5'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 50));
  const tr = Tracee.seize(child.pid as number);
  try {
    const before = getGpRegsRaw(tr.tid);
    const fn = cpuidThroughTracee(tr);
    assert.ok(fn, 'a 0f a2 pair in /usr/bin/sleep or its libraries');
    const layout = xstateLayoutFrom(fn, 'tracee');
    assert.ok(getGpRegsRaw(tr.tid).equals(before), 'registers put back');
    if (dev === undefined) {
      t.diagnostic('no /dev/cpu/0/cpuid to compare with');
      return;
    }
    // Leaf 0xD describes the XSAVE layout; it is the same on every CPU of the machine.
    assert.deepEqual([...layout.components.values()], [...xstateLayoutFrom(dev, 'dev').components.values()]);
    assert.deepEqual(fn(0xd, 0), dev(0xd, 0));
  } finally {
    child.kill('SIGKILL');
  }
});
