/**
 * The cgroup fields of an RPC request as CRIU's service reads them:
 * manage_cgroups (true: soft, false: ignore), manage_cgroups_mode (wins,
 * DEFAULT is soft), cg_root ({ctrl, path}), cgroup_yard, cgroup_dump_controller.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restoreOptionsFrom, dumpOptionsFrom, withDefaults } from '../../src/rpc/opts.js';
import type { CriuOpts } from '../../src/images/messages.js';

const dirs = { imagesDir: '/tmp/x' };
const req = (o: Partial<CriuOpts>): ReturnType<typeof withDefaults> => withDefaults({ images_dir_fd: -1, ...o } as CriuOpts);

test('RPC cgroup options: manage_cgroups, manage_cgroups_mode, cg_root, cgroup_yard, cgroup_dump_controller', () => {
  assert.equal(restoreOptionsFrom(req({}), dirs).manageCgroups, undefined);
  assert.equal(restoreOptionsFrom(req({ manage_cgroups: true }), dirs).manageCgroups, 'soft');
  assert.equal(restoreOptionsFrom(req({ manage_cgroups: false }), dirs).manageCgroups, 'ignore');
  const modes = { IGNORE: 'ignore', CG_NONE: 'none', PROPS: 'props', SOFT: 'soft', FULL: 'full', STRICT: 'strict', DEFAULT: 'soft' } as const;
  for (const [m, want] of Object.entries(modes)) {
    assert.equal(restoreOptionsFrom(req({ manage_cgroups: false, manage_cgroups_mode: m as CriuOpts['manage_cgroups_mode'] }), dirs).manageCgroups, want);
  }
  const r = restoreOptionsFrom(req({ cg_root: [{ path: '/newroot' }, { ctrl: 'name=zdtmtst', path: '/prefix' }], cgroup_yard: 'yard' }), dirs);
  assert.deepEqual(r.cgroupRoot, ['/newroot', 'name=zdtmtst:/prefix']);
  assert.equal(r.cgroupYard, 'yard');
  const d = dumpOptionsFrom(req({ manage_cgroups_mode: 'FULL' as CriuOpts['manage_cgroups_mode'], cgroup_dump_controller: ['cpu', ''] }), dirs, 1);
  assert.equal(d.manageCgroups, 'full');
  assert.deepEqual(d.cgroupDumpController, ['cpu', '']);
});
