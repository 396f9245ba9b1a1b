/**
 * `criu-ts cpuinfo dump|check` and `--cpu-cap` (api/cpuinfo.ts): the image
 * describes this CPU as /proc/cpuinfo does and real crit decodes it; a
 * check passes on it and fails in one line on an image of a CPU that lacks
 * what this one has (or has what this one lacks), under the rule asked for;
 * a dump with --cpu-cap writes it and a restore with --cpu-cap refuses a
 * mismatched one before anything runs. With CRIU_BIN, CRIU 4.2's own
 * `cpuinfo dump` writes the very same bytes and each tool accepts the
 * other's image.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CPU_CAP, cpuinfoCheck, cpuinfoDump, cpuMismatch, parseCpuCap } from '../../src/api/cpuinfo.js';
import { cpuInfoFrom, runtimeCpuInfo } from '../../src/infect/cpu-info.js';
import { cpuidThroughTracee } from '../../src/infect/cpuid.js';
import { startOwnSleep, withSeized } from '../../src/infect/helper-task.js';
import { cpuidFromDevice } from '../../src/sys/index.js';
import { loadImage, storeImage } from '../../src/images/index.js';
import type { CpuinfoX86Entry } from '../../src/images/messages.js';
import { isCriuTsError } from '../../src/errors.js';
import { runCli } from '../lib/run.js';
import { buildSubject, isAlive, startSubject } from '../lib/subjects.js';
import { killAndWait, removeDir, tempDir, waitGone } from '../e2e/helpers.js';

const CRIU = process.env['CRIU_BIN'];
const noCriu = CRIU === undefined || CRIU === '' ? 'set CRIU_BIN to a CRIU 4.2 binary to run this' : !existsSync(CRIU) ? `CRIU_BIN=${CRIU} does not exist` : false;

/** The x86 entry of cpuinfo.img in `dir`, and a way to write it back changed. */
function entry(dir: string): { e: CpuinfoX86Entry; save: (e: CpuinfoX86Entry) => void } {
  const e = loadImage(dir, 'CPUINFO').entries[0]?.x86_entry?.[0];
  assert.ok(e, 'one x86 entry');
  return { e: { ...e, capability: [...(e.capability ?? [])] }, save: (n) => storeImage(dir, 'CPUINFO', undefined, [{ x86_entry: [n] }]) };
}

test('--cpu-cap is read as CRIU reads it', () => {
  const { FPU, CPU, INS, IMAGE, ALL } = CPU_CAP;
  assert.equal(parseCpuCap(undefined), ALL | IMAGE);
  assert.equal(parseCpuCap('fpu'), FPU | INS | IMAGE);
  assert.equal(parseCpuCap('^ins'), FPU | IMAGE);
  assert.equal(parseCpuCap('cpu'), FPU | INS | CPU | IMAGE);
  assert.equal(parseCpuCap('^fpu,cpu'), INS | CPU | IMAGE);
  assert.equal(parseCpuCap('none'), 0);
  assert.equal(parseCpuCap('^none'), ALL | IMAGE);
  assert.throws(() => parseCpuCap('avx'), (e: unknown) => isCriuTsError(e) && e.code === 'EUSAGE' && /--cpu-cap: unknown capability in "avx"/.test(e.message));
});

test('cpuinfo dump describes this CPU (as /proc/cpuinfo and real crit see it); check passes on it', () => {
  const dir = tempDir('cpuinfo');
  try {
    cpuinfoDump({ imagesDir: dir });
    const { e } = entry(dir);
    const proc = readFileSync('/proc/cpuinfo', 'latin1').split('\n\n')[0] ?? '';
    const field = (k: string): string => new RegExp(`^${k}\\s*: (.*)$`, 'm').exec(proc)?.[1] ?? '';
    assert.equal(e.vendor_id, field('vendor_id') === 'GenuineIntel' ? 'INTEL' : 'AMD');
    assert.equal(e.cpu_family, Number(field('cpu family')));
    assert.equal(e.model, Number(field('model')));
    assert.equal(e.stepping, Number(field('stepping')));
    assert.equal(e.model_id, field('model name').trim());
    assert.equal(e.capability_ver, 2);
    assert.equal(e.capability?.length, 19);
    // A few flags /proc/cpuinfo names, at CRIU's word positions.
    const flags = new Set(field('flags').split(' '));
    const has = (w: number, b: number): boolean => (((e.capability?.[w] ?? 0) >>> b) & 1) === 1;
    for (const [name, w, b] of [['fpu', 0, 0], ['sse2', 0, 26], ['pni', 4, 0], ['avx', 4, 28], ['avx2', 9, 5], ['lm', 1, 29]] as const) {
      assert.equal(has(w, b), flags.has(name), `${name} at word ${w} bit ${b}`);
    }
    const crit = JSON.parse(execFileSync('crit', ['decode', '-i', join(dir, 'cpuinfo.img')], { encoding: 'utf8' })) as { magic: string };
    assert.equal(crit.magic, 'CPUINFO');
    cpuinfoCheck({ imagesDir: dir });
    cpuinfoCheck({ imagesDir: dir, cpuCap: CPU_CAP.CPU | CPU_CAP.IMAGE });
  } finally {
    removeDir(dir);
  }
});

test('an image of another CPU: each rule refuses what it covers, in one line', () => {
  const rt = runtimeCpuInfo();
  const img = { ...rt, capability: [...rt.capability] };
  assert.equal(cpuMismatch(img, rt, CPU_CAP.ALL), undefined);
  // An instruction set this CPU lacks (SSE4a: word 6 bit 6, on Intel; else a 3DNow! bit).
  const [w, b] = (rt.capability[6] ?? 0) & (1 << 6) ? [1, 31] : [6, 6];
  img.capability[w] = ((img.capability[w] ?? 0) | (1 << b)) >>> 0;
  assert.match(cpuMismatch(img, rt, CPU_CAP.INS) ?? '', new RegExp(`instruction set features of the image missing on this CPU \\(word ${w}`));
  assert.equal(cpuMismatch(img, rt, CPU_CAP.FPU), undefined, 'not an FPU matter');
  assert.match(cpuMismatch(img, rt, CPU_CAP.CPU) ?? '', /CPU features differ \(word/);
  // A bigger XSAVE area (a CPU with more state): the restored registers would not fit.
  const big = { ...rt, xsaveSize: rt.xsaveSize + 64 };
  assert.match(cpuMismatch(big, rt, CPU_CAP.FPU) ?? '', /XSAVE area size differs/);
  assert.equal(cpuMismatch(big, rt, CPU_CAP.INS), undefined);
});

test('CLI: cpuinfo check of a damaged image, restore --cpu-cap of a mismatched dump: one line, nothing runs', { timeout: 60_000 }, async () => {
  const dir = tempDir('cpuinfo-cli');
  const s = await startSubject('counter-loop', []);
  try {
    const images = join(dir, 'images');
    mkdirSync(images);
    const d = await runCli('criu-ts', ['dump', '-t', String(s.pid), '-D', images, '--cpu-cap', '-o', 'dump.log']);
    assert.equal(d.code, 0, d.stderr);
    assert.ok(await waitGone(s.pid));
    assert.ok(existsSync(join(images, 'cpuinfo.img')), 'dump --cpu-cap writes cpuinfo.img');
    const { e, save } = entry(images);
    save({ ...e, xsave_size_max: (e.xsave_size_max ?? 0) + 64 });
    const c = await runCli('criu-ts', ['cpuinfo', 'check', '-D', images]);
    assert.equal(c.code, 1);
    assert.match(c.stderr.trim(), /^Error \(criu-ts\): .*cpuinfo\.img: largest XSAVE area size differs \(image \d+, this CPU \d+\)$/);
    const r = await runCli('criu-ts', ['restore', '-D', images, '-d', '--cpu-cap=fpu', '-o', 'restore.log']);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /largest XSAVE area size differs/);
    assert.ok(!isAlive(s.pid), 'nothing restored');
    // The image put back as the dump wrote it: restore --cpu-cap passes and the task carries on.
    save(e);
    const ok = await runCli('criu-ts', ['restore', '-D', images, '-d', '--cpu-cap', '-o', 'restore2.log']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(isAlive(s.pid));
    const res = await s.terminateAndResult(30_000);
    assert.ok(res.ok, res.text);
  } finally {
    await killAndWait(s.pid);
    s.cleanup();
    removeDir(dir);
  }
});

test('CRIU 4.2 writes the same cpuinfo.img, and each tool accepts the other\'s', { skip: noCriu }, async () => {
  const dir = tempDir('cpuinfo-criu');
  try {
    const ours = join(dir, 'ours');
    const theirs = join(dir, 'theirs');
    mkdirSync(ours);
    mkdirSync(theirs);
    cpuinfoDump({ imagesDir: ours });
    execFileSync(CRIU as string, ['cpuinfo', 'dump', '-D', theirs], { stdio: 'ignore' });
    assert.deepEqual(readFileSync(join(ours, 'cpuinfo.img')), readFileSync(join(theirs, 'cpuinfo.img')));
    cpuinfoCheck({ imagesDir: theirs });
    execFileSync(CRIU as string, ['cpuinfo', 'check', '-D', ours], { stdio: 'ignore' });
  } finally {
    removeDir(dir);
  }
});

test('without the cpuid driver: a cpuid run in a process of our own (to an int3 after it) tells what user mode is told', () => {
  // The leaves cpuInfoFrom asks, and what the traced cpuid answered.
  const asked = new Map<string, { eax: number; ebx: number; ecx: number; edx: number }>();
  const own = startOwnSleep('cpuid test', 'EINTERNAL', 1000);
  const traced = withSeized(own, (t) => {
    const fn = cpuidThroughTracee(t);
    assert.ok(fn, 'a cpuid instruction in sleep');
    return cpuInfoFrom((leaf, sub) => {
      const r = fn(leaf, sub);
      asked.set(`${leaf.toString(16)}:${sub.toString(16)}`, r);
      return r;
    });
  });
  // The same leaves asked in user mode by a program of ours (not the driver: under a
  // hypervisor such as this machine's PVM the kernel's cpuid may answer otherwise).
  const out = execFileSync(buildSubject('cpuid-user'), [...asked.keys()], { encoding: 'utf8' });
  type Regs = { eax: number; ebx: number; ecx: number; edx: number };
  const user = new Map<string, Regs>(out.trim().split('\n').map((l): [string, Regs] => {
    const [leaf, sub, ...r] = l.split(' ').map((x) => parseInt(x, 16));
    return [`${(leaf ?? 0).toString(16)}:${(sub ?? 0).toString(16)}`, { eax: r[0] ?? 0, ebx: r[1] ?? 0, ecx: r[2] ?? 0, edx: r[3] ?? 0 }];
  }));
  // Leaf 1's ebx holds the APIC id of the CPU it ran on: the two may run on different CPUs.
  const key = (k: string, v: { eax: number; ebx: number; ecx: number; edx: number }): unknown => (k === '1:0' ? { ...v, ebx: v.ebx & 0xffffff } : v);
  for (const [k, v] of asked) assert.deepEqual(key(k, v), key(k, user.get(k) ?? v), `leaf ${k}`);
  assert.ok(traced.capability.length > 0);
});
