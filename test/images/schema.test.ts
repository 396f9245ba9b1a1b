/**
 * Consistency of the whole schema registry (src/images/schema): references
 * resolve, numbers and names are unique, and every message/enum that Debian's
 * crit 3.17 knows has the same wire facts here (CRIU 4.x only added to them,
 * apart from the changes listed in CHANGED_SINCE_3_17).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allEnums, allMessages, lookupEnum, lookupMessage } from '../../src/images/schema/index.js';
import type { FieldDesc, MessageDesc } from '../../src/images/schema/index.js';

const SCALARS = new Set([
  'double', 'float', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64',
  'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'bool', 'string', 'bytes',
]);
const CRIT_OPTS = new Set(['hex', 'ipadd', 'flags', 'dev', 'odev', 'dict', 'conv']);

function field(msg: string, num: number): FieldDesc {
  const m = lookupMessage(msg);
  assert.ok(m, `message ${msg} is registered`);
  const fd = m.fields.find((x) => x.num === num);
  assert.ok(fd, `${msg} has field ${num}`);
  return fd;
}

function expectField(msg: string, num: number, name: string, rule: FieldDesc['rule'], type: FieldDesc['type'], more: Partial<FieldDesc> = {}): void {
  const fd = field(msg, num);
  assert.equal(fd.name, name, `${msg}.${num} name`);
  assert.equal(fd.rule, rule, `${msg}.${name} rule`);
  assert.equal(fd.type, type, `${msg}.${name} type`);
  if (more.ref !== undefined) assert.equal(fd.ref, more.ref, `${msg}.${name} ref`);
  if (more.opts !== undefined) assert.deepEqual(fd.opts, more.opts, `${msg}.${name} opts`);
  if (more.packed !== undefined) assert.equal(fd.packed === true, more.packed, `${msg}.${name} packed`);
}

test('every referenced message and enum is registered', () => {
  const unresolved: string[] = [];
  for (const m of allMessages()) {
    for (const fd of m.fields) {
      if (fd.type === 'message' && (fd.ref === undefined || lookupMessage(fd.ref) === undefined)) {
        unresolved.push(`${m.name}.${fd.name} -> message ${String(fd.ref)}`);
      }
      if (fd.type === 'enum' && (fd.ref === undefined || lookupEnum(fd.ref) === undefined)) {
        unresolved.push(`${m.name}.${fd.name} -> enum ${String(fd.ref)}`);
      }
    }
  }
  assert.deepEqual(unresolved, []);
});

test('fields are well formed and unique within each message', () => {
  for (const m of allMessages()) {
    const nums = new Set<number>();
    const names = new Set<string>();
    for (const fd of m.fields) {
      const where = `${m.name}.${fd.name}`;
      assert.ok(!nums.has(fd.num), `${m.name}: field number ${fd.num} used twice`);
      assert.ok(!names.has(fd.name), `${m.name}: field name ${fd.name} used twice`);
      nums.add(fd.num);
      names.add(fd.name);
      assert.ok(Number.isInteger(fd.num) && fd.num >= 1 && fd.num < 2 ** 29, `${where}: number ${fd.num} out of range`);
      assert.ok(fd.num < 19000 || fd.num > 19999, `${where}: number ${fd.num} is reserved by protobuf`);
      assert.ok(/^[A-Za-z_][A-Za-z0-9_]*$/.test(fd.name), `${where}: bad field name`);
      assert.ok(['required', 'optional', 'repeated'].includes(fd.rule), `${where}: bad rule ${fd.rule}`);
      if (fd.type === 'message' || fd.type === 'enum') {
        assert.ok(typeof fd.ref === 'string' && fd.ref.length > 0, `${where}: ${fd.type} without ref`);
      } else {
        assert.ok(SCALARS.has(fd.type), `${where}: unknown type ${fd.type}`);
        assert.equal(fd.ref, undefined, `${where}: scalar with ref`);
      }
      if (fd.packed === true) {
        assert.equal(fd.rule, 'repeated', `${where}: packed but not repeated`);
        assert.ok(!['string', 'bytes', 'message'].includes(fd.type), `${where}: packed ${fd.type}`);
      }
      for (const k of Object.keys(fd.opts ?? {})) assert.ok(CRIT_OPTS.has(k), `${where}: unknown (criu) option ${k}`);
    }
    const sorted = m.fields.map((x) => x.num);
    assert.deepEqual(sorted, [...sorted].sort((a, b) => a - b), `${m.name}: fields not in number order`);
  }
});

test('enum and message names are unique and enum values well formed', () => {
  const messageNames = new Set([...allMessages()].map((m) => m.name));
  const enumNames = new Set<string>();
  for (const e of allEnums()) {
    assert.ok(!enumNames.has(e.name), `enum ${e.name} registered twice`);
    assert.ok(!messageNames.has(e.name), `${e.name} is both a message and an enum`);
    enumNames.add(e.name);
    const nums = Object.values(e.values);
    assert.ok(nums.length > 0, `enum ${e.name} is empty`);
    // proto2 forbids aliases unless allow_alias; CRIU uses none.
    assert.equal(new Set(nums).size, nums.length, `enum ${e.name} has aliased numbers`);
    for (const v of nums) assert.ok(Number.isInteger(v), `enum ${e.name}: non-integer value`);
  }
});

test('spot checks: tty, net, ipc, cgroup, sockets, namespaces', () => {
  expectField('tty_info_entry', 2, 'type', 'required', 'enum', { ref: 'TtyType' });
  expectField('tty_info_entry', 12, 'pty', 'optional', 'message', { ref: 'tty_pty_entry' });
  expectField('tty_info_entry', 15, 'gid', 'optional', 'uint32');
  expectField('tty_file_entry', 3, 'flags', 'required', 'uint32', { opts: { hex: true } });
  expectField('tty_file_entry', 6, 'regf_id', 'optional', 'uint32');
  expectField('termios_entry', 8, 'c_cc', 'repeated', 'uint32', { packed: false });
  assert.equal(lookupEnum('TtyType')?.values['SERIAL'], 6);
  expectField('tcp_stream_entry', 5, 'opt_mask', 'required', 'uint32', { opts: { hex: true } });
  expectField('tcp_stream_entry', 17, 'rcv_wup', 'optional', 'uint32');
  expectField('ghost_file_entry', 6, 'rdev', 'optional', 'uint32', { opts: { dev: true, odev: true } });
  expectField('ghost_file_entry', 7, 'atim', 'optional', 'message', { ref: 'timeval' });
  expectField('ghost_file_entry', 11, 'symlnk_target', 'optional', 'string');
  expectField('ghost_chunk_entry', 2, 'off', 'required', 'uint64');
  assert.equal(lookupEnum('remap_type')?.values['PROCFS'], 2);
  expectField('mnt_entry', 3, 'root_dev', 'required', 'uint32', { opts: { dev: true } });
  expectField('mnt_entry', 18, 'ext_key', 'optional', 'string');
  assert.equal(lookupEnum('fstype')?.values['CGROUP2'], 23);
  expectField('net_device_entry', 15, 'sit', 'optional', 'message', { ref: 'sit_entry' });
  expectField('netns_entry', 9, 'unix_conf', 'repeated', 'message', { ref: 'sysctl_entry' });
  expectField('sit_entry', 16, 'relay_prefix', 'repeated', 'uint32', { opts: { ipadd: true } });
  assert.equal(lookupEnum('nd_type')?.values['SIT'], 8);
  assert.equal(lookupEnum('SysctlType')?.values['CTL_32'], 6);
  expectField('ipc_var_entry', 17, 'shm_next_id', 'optional', 'uint32');
  expectField('ipc_shm_entry', 1, 'desc', 'required', 'message', { ref: 'ipc_desc_entry' });
  expectField('ipc_msg', 1, 'mtype', 'required', 'uint64');
  expectField('cg_controller_entry', 3, 'is_threaded', 'optional', 'bool');
  expectField('cgroup_dir_entry', 2, 'children', 'repeated', 'message', { ref: 'cgroup_dir_entry' });
  expectField('packet_sock_entry', 19, 'tx_ring', 'optional', 'message', { ref: 'packet_ring' });
  expectField('netlink_sk_entry', 12, 'opts', 'required', 'message', { ref: 'sk_opts_entry' });
  expectField('sk_opts_entry', 16, 'so_filter', 'repeated', 'fixed64');
  expectField('sk_opts_entry', 25, 'so_buf_lock', 'optional', 'uint32');
  assert.deepEqual(lookupEnum('sk_shutdown')?.values, { NONE: 0, READ: 1, WRITE: 2, BOTH: 3 });
  expectField('tunfile_entry', 4, 'ns_id', 'optional', 'uint32');
  expectField('ns_file_entry', 3, 'ns_cflag', 'required', 'uint32');
  expectField('file_lock_entry', 6, 'len', 'required', 'int64');
  expectField('bpfmap_file_entry', 2, 'flags', 'required', 'uint32', { opts: { flags: 'rfile.flags' } });
  expectField('bpfmap_file_entry', 16, 'map_extra', 'optional', 'uint64');
  expectField('bpfmap_data_entry', 4, 'count', 'required', 'uint32');
  expectField('ext_file_entry', 5, 'fown', 'required', 'message', { ref: 'fown_entry' });
  expectField('cpuinfo_x86_entry', 1, 'vendor_id', 'required', 'enum', { ref: 'cpuinfo_x86_entry.vendor' });
  expectField('irmap_cache_entry', 1, 'dev', 'required', 'uint32', { opts: { dev: true, odev: true } });
  expectField('userns_entry', 2, 'gid_map', 'repeated', 'message', { ref: 'uid_gid_extent' });
  expectField('pidfd_entry', 2, 'ino', 'required', 'uint32');
  expectField('pidfd_entry', 4, 'nspid', 'required', 'int32');
  expectField('aa_namespace', 3, 'namespaces', 'repeated', 'message', { ref: 'aa_namespace' });
  expectField('binfmt_misc_entry', 8, 'offset', 'optional', 'int32');
  expectField('autofs_entry', 9, 'read_fd', 'optional', 'int32');
});

test('spot checks: rpc.proto', () => {
  expectField('criu_req', 1, 'type', 'required', 'enum', { ref: 'criu_req_type' });
  expectField('criu_req', 6, 'pid', 'optional', 'uint32');
  expectField('criu_resp', 10, 'version', 'optional', 'message', { ref: 'criu_version' });
  expectField('criu_opts', 1, 'images_dir_fd', 'required', 'int32');
  expectField('criu_opts', 34, 'manage_cgroups_mode', 'optional', 'enum', { ref: 'criu_cg_mode' });
  expectField('criu_opts', 68, 'images_dir', 'optional', 'string');
  expectField('criu_opts', 74, 'file_validation_method', 'optional', 'enum', { ref: 'criu_file_validation_method' });
  assert.equal(lookupMessage('criu_opts')?.fields.some((x) => x.num === 40), false, 'criu_opts has no field 40');
  assert.equal(lookupEnum('criu_req_type')?.values['SINGLE_PRE_DUMP'], 13);
  assert.equal(lookupEnum('criu_network_lock_method')?.values['SKIP'], 3);
  assert.equal(lookupEnum('criu_cg_mode')?.values['DEFAULT'], 6);
  expectField('criu_features', 3, 'pidfd_store', 'optional', 'bool');
  expectField('join_namespace', 3, 'extra_opt', 'optional', 'string');
});

// ---- oracle: Debian's crit 3.17 descriptors ----

/** Changes CRIU made after 3.17, by "message.fieldnumber". */
const CHANGED_SINCE_3_17: Readonly<Record<string, string>> = {
  // CRIU 4.0 moved the page count to a uint64 field 4 and kept 2 as a compat field
  'pagemap_entry.2': 'renamed nr_pages -> compat_nr_pages',
};
/** 3.17 messages that are not image data (opts.proto describes field options). */
const NOT_DATA = new Set(['CRIU_Opts']);

const PYCRIU = '/usr/lib/python3/dist-packages/pycriu';
const ORACLE_PY = `
import sys, pkgutil, importlib, json
sys.path.insert(0, '/usr/lib/python3/dist-packages')
import pycriu.images as P, pycriu.images.opts_pb2 as opts
from google.protobuf.descriptor import FieldDescriptor as FD
T = {getattr(FD, 'TYPE_' + t.upper()): t for t in ['double','float','int64','uint64','int32','fixed64','fixed32','bool','string','bytes','uint32','sfixed32','sfixed64','sint32','sint64','enum','message']}
L = {1: 'optional', 2: 'required', 3: 'repeated'}
msgs, enums = {}, {}
def enum(e): enums[e.full_name] = {v.name: v.number for v in e.values}
def msg(d):
    fs = []
    for fl in d.fields:
        fo, o = fl.GetOptions(), {}
        if fo.HasExtension(opts.criu):
            c = fo.Extensions[opts.criu]
            o = {k: getattr(c, k) for k in ['hex','ipadd','flags','dev','odev','dict','conv'] if c.HasField(k)}
        ref = fl.enum_type.full_name if fl.type == FD.TYPE_ENUM else fl.message_type.full_name if fl.type == FD.TYPE_MESSAGE else None
        fs.append({'num': fl.number, 'name': fl.name, 'rule': L[fl.label], 'type': T[fl.type], 'ref': ref, 'packed': bool(fo.packed), 'opts': o})
    msgs[d.full_name] = fs
    for e in d.enum_types: enum(e)
    for n in d.nested_types: msg(n)
mods = ['pycriu.images.' + m.name for m in pkgutil.iter_modules(P.__path__) if m.name.endswith('_pb2')] + ['pycriu.rpc_pb2']
for n in mods:
    fd = importlib.import_module(n).DESCRIPTOR
    for e in fd.enum_types_by_name.values(): enum(e)
    for d in fd.message_types_by_name.values(): msg(d)
print(json.dumps({'messages': msgs, 'enums': enums}))
`;

interface OracleField {
  num: number; name: string; rule: string; type: string; ref: string | null; packed: boolean; opts: Record<string, unknown>;
}
interface Oracle {
  messages: Record<string, OracleField[]>;
  enums: Record<string, Record<string, number>>;
}

function ours(m: MessageDesc, num: number): OracleField | undefined {
  const g = m.fields.find((x) => x.num === num);
  if (g === undefined) return undefined;
  return { num: g.num, name: g.name, rule: g.rule, type: g.type, ref: g.ref ?? null, packed: g.packed === true, opts: { ...(g.opts ?? {}) } };
}

test('agrees with crit 3.17 on every message and enum it knows', (t) => {
  if (!existsSync(`${PYCRIU}/images`)) {
    t.skip(`no ${PYCRIU} (apt-get install -y criu)`);
    return;
  }
  const r = spawnSync('python3', ['-c', ORACLE_PY], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    t.skip(`python3 could not read pycriu descriptors: ${r.stderr.slice(0, 300)}`);
    return;
  }
  const oracle = JSON.parse(r.stdout) as Oracle;
  const problems: string[] = [];
  for (const [name, fields] of Object.entries(oracle.messages)) {
    if (NOT_DATA.has(name)) continue;
    const m = lookupMessage(name);
    if (m === undefined) {
      problems.push(`missing message ${name}`);
      continue;
    }
    for (const want of fields) {
      if (CHANGED_SINCE_3_17[`${name}.${want.num}`] !== undefined) continue;
      const got = ours(m, want.num);
      if (got === undefined) problems.push(`${name}: missing field ${want.num} ${want.name}`);
      else if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${name}.${want.num}: want ${JSON.stringify(want)} got ${JSON.stringify(got)}`);
    }
  }
  for (const [name, values] of Object.entries(oracle.enums)) {
    const e = lookupEnum(name);
    if (e === undefined) {
      problems.push(`missing enum ${name}`);
      continue;
    }
    for (const [k, v] of Object.entries(values)) {
      if (e.values[k] !== v) problems.push(`enum ${name}.${k}: want ${v} got ${String(e.values[k])}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('src/images/messages.ts matches the registry (npm run gen:types)', () => {
  // dist/test/images -> repository root
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const r = spawnSync(process.execPath, [`${root}scripts/gen-message-types.mjs`, '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
