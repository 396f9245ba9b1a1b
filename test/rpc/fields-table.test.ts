/**
 * docs/rpc.md's table of RPC fields, walked against the schema and the
 * code: every field of criu_opts and criu_req has exactly one row (and
 * every row a field, with its number); a field the table calls refused,
 * set to a value that matters, fails the request with cr_errno EOPNOTSUPP
 * and a message naming it; a field called honoured or ignored is taken
 * without complaint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lookupEnum, lookupMessage } from '../../src/images/schema/index.js';
import type { FieldDesc } from '../../src/images/schema/types.js';
import type { CriuOpts } from '../../src/images/messages.js';
import { checkSupported, withDefaults } from '../../src/rpc/opts.js';
import { rpcErrnoOf } from '../../src/errors.js';
import { readExternals } from '../../src/api/externals.js';
import { repoRoot } from '../lib/subjects.js';

type Handling = 'honoured' | 'refused' | 'ignored';
interface Row { field: string; num: number; how: Handling }

/** The rows of the table that follows `### <message>` in docs/rpc.md. */
function rowsOf(message: string): Row[] {
  const doc = readFileSync(join(repoRoot(), 'docs', 'rpc.md'), 'utf8');
  const at = doc.indexOf(`### ${message}\n`);
  assert.ok(at >= 0, `docs/rpc.md has no "### ${message}" table`);
  const rows: Row[] = [];
  for (const line of doc.slice(at).split('\n').slice(1)) {
    if (line.startsWith('#')) break;
    const m = /^\| `(\w+)` \((\d+)\) \| (honoured|refused|ignored) \|/.exec(line);
    if (m) rows.push({ field: m[1] as string, num: Number(m[2]), how: m[3] as Handling });
    else if (line.startsWith('| `')) assert.fail(`docs/rpc.md: a row that does not parse: ${line}`);
  }
  return rows;
}

function checkAgainstSchema(message: string): Row[] {
  const desc = lookupMessage(message);
  assert.ok(desc, `no schema for ${message}`);
  const rows = rowsOf(message);
  const byName = new Map(rows.map((r) => [r.field, r]));
  assert.equal(byName.size, rows.length, `${message}: a field has two rows`);
  const missing = desc.fields.filter((f) => !byName.has(f.name)).map((f) => `${f.name} (${f.num})`);
  assert.deepEqual(missing, [], `${message} fields without a row in docs/rpc.md`);
  for (const r of rows) {
    const f: FieldDesc | undefined = desc.fields.find((x) => x.name === r.field);
    assert.ok(f, `docs/rpc.md names ${message}.${r.field}, which the schema does not have`);
    assert.equal(r.num, f.num, `${message}.${r.field}: the table says field ${r.num}, the schema ${f.num}`);
  }
  return rows;
}

/** Values of refused fields that matter (a refused field at its default is no request for it). */
const REFUSED_SAMPLES: Record<string, unknown> = {
  root: '/tmp',
  exec_cmd: ['/bin/true'],
  ext_mnt: [{ key: '/mnt', val: '/mnt' }],
  external: ['file[1:2]'],
  cgroup_props: 'cpu: { props: [cpu.shares] }',
  cgroup_props_file: '/etc/criu/props.yaml',
  tls: true,
  lsm_profile: 'apparmor:unconfined',
  lsm_mount_context: 'system_u:object_r:container_file_t:s0',
};

/** A value of the field's type that is not its default, for honoured and ignored fields. */
function sampleOf(f: FieldDesc): unknown {
  const one = (): unknown => {
    switch (f.type) {
      case 'bool': return true;
      case 'string': return f.name === 'log_file' ? 'x.log' : f.name === 'external' ? 'file[1a:2b]' : 'x';
      case 'enum': return Object.keys(lookupEnum(f.ref as string)?.values ?? {})[1];
      case 'message': return f.name === 'join_ns' ? { ns: 'net', ns_file: '/proc/1/ns/net' } : f.name === 'veths' ? { if_in: 'eth0', if_out: 'veth0' } : f.name === 'ps' ? { address: '127.0.0.1', port: 1234 } : f.name === 'cg_root' ? { path: '/x' } : f.name === 'unix_sk_ino' ? { inode: 1 } : f.name === 'inherit_fd' ? { key: 'pipe:[1]', fd: 0 } : {};
      default: return 1;
    }
  };
  return f.rule === 'repeated' ? [one()] : one();
}

test('docs/rpc.md has one row per criu_opts and criu_req field, with its number', () => {
  const opts = checkAgainstSchema('criu_opts');
  checkAgainstSchema('criu_req');
  assert.ok(opts.length >= 73);
});

test('each criu_opts field is handled as the table says: refused with EOPNOTSUPP naming it, else accepted', () => {
  const desc = lookupMessage('criu_opts');
  assert.ok(desc);
  for (const r of rowsOf('criu_opts')) {
    const f = desc.fields.find((x) => x.name === r.field) as FieldDesc;
    if (r.field === 'images_dir_fd') continue; // required: always there
    const refusedSample = REFUSED_SAMPLES[r.field];
    if (r.how === 'refused') assert.ok(refusedSample !== undefined, `no sample for the refused field ${r.field}: add one to REFUSED_SAMPLES`);
    const value = r.how === 'refused' ? refusedSample : sampleOf(f);
    const req = withDefaults({ images_dir_fd: -1, [r.field]: value } as unknown as CriuOpts);
    for (const op of ['dump', 'restore'] as const) {
      // track_mem and ps are for dumps and pre-dumps (a RESTORE refuses them); rst_sibling for restores in swrk (the service refuses it apart).
      if ((r.field === 'track_mem' || r.field === 'ps') && op === 'restore') continue;
      // join_ns is for restores; a dump refuses it.
      if (r.field === 'join_ns' && op === 'dump') continue;
      let err: unknown;
      try {
        checkSupported(req, op, 'swrk');
      } catch (e) {
        err = e;
      }
      if (r.how === 'refused') {
        assert.ok(err instanceof Error, `${r.field} = ${JSON.stringify(value)} was not refused (${op})`);
        assert.equal(rpcErrnoOf(err), 95, `${r.field}: cr_errno`);
        assert.match(err.message, new RegExp(`\\b${r.field}\\b`), `${r.field}: the message does not name the field`);
      } else {
        assert.equal(err, undefined, `${r.field} (${r.how}) = ${JSON.stringify(value)} was refused (${op}): ${String(err)}`);
      }
    }
  }
});

test('config_file: absent or comment-only is nothing to apply; a file that sets options is refused', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/criu-ts-rpc-conf-');
  try {
    const conf = join(dir, 'runc.conf');
    const req = (): ReturnType<typeof withDefaults> => withDefaults({ images_dir_fd: -1, config_file: conf } as CriuOpts);
    checkSupported(req(), 'dump', 'swrk');
    writeFileSync(conf, '# nothing here\n\n');
    checkSupported(req(), 'dump', 'swrk');
    writeFileSync(conf, 'tcp-established\n');
    assert.throws(() => checkSupported(req(), 'dump', 'swrk'), (e: Error) => rpcErrnoOf(e) === 95 && e.message.includes('config_file'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('external: file[..], tty[..], unix[..] and net[..] are taken at dump, any kind criu-ts does not take is refused with EOPNOTSUPP naming it', () => {
  assert.deepEqual(readExternals(['file[1a:2b]', 'tty[8800:19]', 'unix[123]'], [], 'dump'), { vethPairs: [], macvlans: [], netNs: [], netdevs: [] });
  // runc's request for a container whose network namespace is given by path (test/kinds/ns/net-external.test.ts)
  assert.deepEqual(readExternals(['net[4026531992]:extRootNetNS'], [], 'dump').netNs, [{ inode: 4026531992, key: 'extRootNetNS' }]);
  for (const other of ['mnt[/x]:y', 'pid[123]:x']) {
    assert.throws(() => readExternals(['file[1:2]', other], [], 'restore'),
      (e: Error) => rpcErrnoOf(e) === 95 && e.message.includes(other) && !e.message.includes('file[1:2]'), other);
  }
});
