import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { check, BASIC_FEATURES, FEATURE_NAMES, EXTRA_FEATURES, EXPERIMENTAL_FEATURES } from '../../src/api/check.js';
import { isCriuTsError } from '../../src/errors.js';

function kconfig(name: string): string | undefined {
  try {
    const m = new RegExp(`^CONFIG_${name}=(.*)$`, 'm').exec(gunzipSync(readFileSync('/proc/config.gz')).toString());
    return m?.[1];
  } catch {
    return undefined;
  }
}

test('the basics are all there on this machine; a plain check probes only them, --extra and --experimental the rest', async () => {
  const r = await check({});
  for (const n of BASIC_FEATURES) assert.equal(r.features[n]?.ok, true, `${n}: ${r.features[n]?.reason ?? ''}`);
  assert.equal(r.ok, true);
  assert.deepEqual(Object.keys(r.features).sort(), [...BASIC_FEATURES].sort());
  const extra = await check({ extra: true });
  assert.deepEqual(Object.keys(extra.features).sort(), [...BASIC_FEATURES, ...EXTRA_FEATURES].sort());
  const all = await check({ extra: true, experimental: true });
  assert.equal(all.ok, true);
  for (const n of FEATURE_NAMES) assert.ok(all.features[n] !== undefined, `${n} probed`);
  for (const [n, f] of Object.entries(all.features)) if (!f.ok) assert.ok(f.reason, `${n} says why not`);
});

test('categories cover every feature exactly once', () => {
  const all = [...BASIC_FEATURES, ...EXTRA_FEATURES, ...EXPERIMENTAL_FEATURES];
  assert.equal(new Set(all).size, FEATURE_NAMES.length);
  for (const n of FEATURE_NAMES) assert.ok(all.includes(n), n);
});

test('single features answer like the kernel config says', async () => {
  const one = async (name: string): Promise<boolean> => {
    const r = await check({ feature: name });
    assert.deepEqual(Object.keys(r.features), [name]);
    assert.equal(r.ok, r.features[name]?.ok);
    return r.ok;
  };
  // Soft-dirty or, without it (this kernel), async uffd-wp + PAGEMAP_SCAN (6.7+).
  assert.equal(await one('mem_dirty_track'), kconfig('MEM_SOFT_DIRTY') === 'y' || (await one('uffd_wp_async') && await one('pagemap_scan')));
  assert.equal(await one('clone3_set_tid'), true);
  assert.equal(await one('get_rseq_conf'), true);
  assert.equal(await one('seccomp_suspend'), true);
  assert.equal(await one('pidfd_store'), true);
  assert.equal(await one('kcmp_epoll'), kconfig('KCMP') === 'y' || kconfig('CHECKPOINT_RESTORE') === 'y');
  // Lazy pages: the kernel's own answer (userfaultfd as root, with the non-cooperative events since 4.11).
  assert.equal(await one('uffd'), true);
  assert.equal(await one('uffd-noncoop'), true);
  // PAGEMAP_SCAN and UFFD_FEATURE_WP_ASYNC came together in 6.7
  const [major = 0, minor = 0] = readFileSync('/proc/sys/kernel/osrelease', 'utf8').split('.').map(Number);
  const recent = major > 6 || (major === 6 && minor >= 7);
  assert.equal(await one('pagemap_scan'), recent);
  if (kconfig('PTE_MARKER_UFFD_WP') === 'y') assert.equal(await one('uffd_wp_async'), recent);
  assert.equal(await one('timens'), kconfig('TIME_NS') === 'y');
  // User namespaces are restored (kinds/ns/user.ts), as CRIU's check asks: the ns and PR_SET_MM_MAP.
  assert.equal(await one('userns'), existsSync('/proc/self/ns/user'));
  // --external net[INODE]:KEY and --inherit-fd (test/kinds/ns/net-external.test.ts)
  assert.equal(await one('external_net_ns'), existsSync('/proc/self/ns/net'));
});

test('an unknown feature is a usage error', async () => {
  await assert.rejects(check({ feature: 'warp_drive' }), (e: unknown) => isCriuTsError(e) && e.code === 'EUSAGE');
});
