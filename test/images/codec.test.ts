/**
 * The proto2 codec on its own: wire forms of every scalar type, packed and
 * unpacked repeated fields, unknown fields, enums, errors, and speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCriuTsError } from '../../src/errors.js';
import {
  decodeImage, decodeMessage, encodeImage, encodeMessage, kindByFileName, kindByMagic, kindByName, imageFileName,
} from '../../src/images/index.js';
import { defineEnum, defineMessage, f } from '../../src/images/schema/types.js';
import { unknownFieldsOf } from '../../src/images/codec.js';
import { messageToJson } from '../../src/images/json/to-json.js';
import { jsonToMessage } from '../../src/images/json/from-json.js';

defineEnum('codec_test_enum', { ZERO: 0, ONE: 1, MINUS: -2 });
defineMessage('codec_test_sub', [f(1, 'v', 'optional', 'sint64'), f(2, 's', 'repeated', 'string')]);
defineMessage('codec_test_msg', [
  f(1, 'u32', 'optional', 'uint32'),
  f(2, 'i32', 'optional', 'int32'),
  f(3, 's32', 'optional', 'sint32'),
  f(4, 'u64', 'optional', 'uint64'),
  f(5, 'i64', 'optional', 'int64'),
  f(6, 's64', 'optional', 'sint64'),
  f(7, 'f32', 'optional', 'fixed32'),
  f(8, 'sf32', 'optional', 'sfixed32'),
  f(9, 'f64', 'optional', 'fixed64'),
  f(10, 'sf64', 'optional', 'sfixed64'),
  f(11, 'fl', 'optional', 'float'),
  f(12, 'db', 'optional', 'double'),
  f(13, 'b', 'optional', 'bool'),
  f(14, 'str', 'optional', 'string'),
  f(15, 'by', 'optional', 'bytes'),
  f(16, 'e', 'optional', 'enum', { ref: 'codec_test_enum' }),
  f(17, 'sub', 'optional', 'message', { ref: 'codec_test_sub' }),
  f(18, 'subs', 'repeated', 'message', { ref: 'codec_test_sub' }),
  f(19, 'packed', 'repeated', 'uint32', { packed: true }),
  f(20, 'unpacked', 'repeated', 'sint32'),
  f(21, 'req', 'required', 'uint32'),
  f(22, 'u64s', 'repeated', 'uint64'),
  f(23, 'u64p', 'repeated', 'uint64', { packed: true }),
]);

const hex = (b: Buffer): string => b.toString('hex');

test('scalar wire forms match protobuf', () => {
  assert.equal(hex(encodeMessage('codec_test_msg', { req: 150 })), 'a8019601');
  assert.equal(hex(encodeMessage('codec_test_msg', { req: 0, i32: -1 })), '10ffffffffffffffffff01a80100');
  assert.equal(hex(encodeMessage('codec_test_msg', { req: 0, s32: -1, s64: -2n })), '1801300 3a80100'.replace(' ', ''));
  assert.equal(hex(encodeMessage('codec_test_msg', { req: 0, u64: (1n << 64n) - 1n })), '20ffffffffffffffffff01a80100');
  assert.equal(hex(encodeMessage('codec_test_msg', { req: 0, e: 'MINUS' })), '80 01feffffffffffffffff01a80100'.replace(' ', ''));
  assert.equal(hex(encodeMessage('codec_test_msg', { req: 1, f32: 1, sf64: -1n })), '3d01000000 51ffffffffffffffff a80101'.replace(/ /g, ''));
});

test('every type round-trips with the documented value conventions', () => {
  const msg = {
    u32: 0xffffffff, i32: -2147483648, s32: -123456, u64: (1n << 64n) - 1n, i64: -(1n << 63n), s64: -(1n << 62n),
    f32: 0xdeadbeef, sf32: -5, f64: 1n << 63n, sf64: -7n, fl: 1.5, db: -2.25, b: true, str: 'h\u00e9', by: Buffer.from([0, 1, 255]),
    e: 'ONE', sub: { v: -1n, s: ['a', ''] }, subs: [{}, { v: 5n }], packed: [1, 300, 0xffffffff], unpacked: [-1, 0, 1], req: 7,
  };
  const back = decodeMessage('codec_test_msg', encodeMessage('codec_test_msg', msg));
  assert.deepEqual(back, msg);
});

/** A varint as protobuf defines it, one 7-bit group at a time, as a reference. */
function refVarint(v: bigint): string {
  let u = BigInt.asUintN(64, v);
  const out: number[] = [];
  for (; u >= 0x80n; u >>= 7n) out.push(Number(u & 0x7fn) | 0x80);
  out.push(Number(u));
  return hex(Buffer.from(out));
}

test('repeated uint64 values around 2^32, 2^53 and 2^64 encode as protobuf varints, packed and not', () => {
  const values: bigint[] = [0n, 127n, 128n, (1n << 32n) - 1n, 1n << 32n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 1n << 56n, 1n << 63n, (1n << 64n) - 1n, 0x8000_0000_0000_007fn];
  // Pseudo-random 64-bit values whose every byte is non-zero somewhere.
  let x = 0x9e3779b97f4a7c15n;
  for (let i = 0; i < 200; i++) {
    x = BigInt.asUintN(64, x * 6364136223846793005n + 1442695040888963407n);
    values.push(x, x >> BigInt(i % 64));
  }
  for (const v of values) {
    assert.equal(hex(encodeMessage('codec_test_msg', { req: 0, u64s: [v] })), `a80100b001${refVarint(v)}`, `value ${v}`);
  }
  const msg = { req: 0, u64s: values, u64p: values };
  assert.deepEqual(decodeMessage('codec_test_msg', encodeMessage('codec_test_msg', msg)), msg);
  // A number item takes the same form as the bigint of its value.
  assert.equal(hex(encodeMessage('codec_test_msg', { req: 0, u64s: [2 ** 40, 5] })), hex(encodeMessage('codec_test_msg', { req: 0, u64s: [1n << 40n, 5n] })));
});

test('packed and unpacked repeated are both accepted on decode', () => {
  // field 19 unpacked (tag 0x98 0x01) and field 20 packed (tag 0xa2 0x01)
  const unpacked = Buffer.from('9801019801029801 03a201020102a80100'.replace(/ /g, ''), 'hex');
  const m = decodeMessage('codec_test_msg', unpacked);
  assert.deepEqual(m['packed'], [1, 2, 3]);
  assert.deepEqual(m['unpacked'], [-1, 1]);
});

test('unknown fields are skipped; an unknown enum number stays a number', () => {
  const withUnknown = Buffer.from('f8060ad2070301020395070000000099070000000000000000a801008001 05'.replace(/ /g, ''), 'hex');
  const m = decodeMessage('codec_test_msg', withUnknown);
  assert.deepEqual(m, { req: 0, e: 5 });
});

test('unknown fields are kept and written back in place, also through crit JSON', () => {
  // A newer CRIU's fields (numbers 3000, 50 as a LEN, 16 with a wrong wire type) around known ones.
  const bytes = Buffer.concat([
    encodeMessage('codec_test_msg', { req: 7, u32: 1 }).subarray(0, 2), // field 1 = 1
    Buffer.from('f80101', 'hex'), // field 31 varint 1 (unknown)
    Buffer.from('92030361 6263'.replace(/ /g, ''), 'hex'), // field 50 LEN "abc" (unknown)
    Buffer.from('a80107', 'hex'), // field 21 = req 7
    Buffer.from('c0bb0105', 'hex'), // field 3000 varint 5 (unknown)
  ]);
  const m = decodeMessage('codec_test_msg', bytes);
  assert.deepEqual(m, { u32: 1, req: 7 }, 'unknown fields stay out of sight');
  assert.deepEqual(unknownFieldsOf(m).map((u) => u.num), [31, 50, 3000]);
  const again = encodeMessage('codec_test_msg', m);
  // Written back in number order between the known fields: 1, 21 known; 31, 50, 3000 unknown.
  const sorted = Buffer.concat([bytes.subarray(0, 2), Buffer.from('a80107', 'hex'), Buffer.from('f80101', 'hex'), Buffer.from('9203036162 63'.replace(/ /g, ''), 'hex'), Buffer.from('c0bb0105', 'hex')]);
  assert.equal(again.toString('hex'), sorted.toString('hex'));
  assert.ok(encodeMessage('codec_test_msg', decodeMessage('codec_test_msg', sorted)).equals(sorted), 'a protobuf-ordered message round-trips byte for byte');
  const json = messageToJson('codec_test_msg', decodeMessage('codec_test_msg', sorted));
  assert.deepEqual(Object.keys(json), ['u32', 'req', '_unknown_fields']);
  assert.ok(encodeMessage('codec_test_msg', jsonToMessage('codec_test_msg', JSON.parse(JSON.stringify(json)))).equals(sorted), 'through JSON');
});

test('malformed input fails with EIMAGE and an offset, never a RangeError', () => {
  const cases = [
    Buffer.from('a801', 'hex'), // truncated varint
    Buffer.from('7a05616263', 'hex'), // string longer than the rest
    Buffer.from('7affffffff0f', 'hex'), // 4 GiB length
    Buffer.from('0f', 'hex'), // invalid wire type 7
    Buffer.from('', 'hex'), // missing required
    Buffer.from('a8 01ffffffffffffffffffff01'.replace(' ', ''), 'hex'), // 11-byte varint
  ];
  for (const c of cases) {
    assert.throws(() => decodeMessage('codec_test_msg', c), (e: unknown) => isCriuTsError(e) && e.code === 'EIMAGE' && typeof e.data['offset'] === 'number', c.toString('hex'));
  }
});

test('encode rejects wrong types and out-of-range values with EIMAGE', () => {
  for (const bad of [{ req: -1 }, { req: 1.5 }, { req: 2 ** 32 }, { req: '1' }, { req: 1, u64: 1n << 64n }, { req: 1, u64s: [1n << 64n] }, { req: 1, u64p: [1.5] }, { req: 1, packed: [2 ** 32] }, { req: 1, packed: [-1] }, { req: 1, e: 'NOPE' }, { req: 1, b: 1 }, {}]) {
    assert.throws(() => encodeMessage('codec_test_msg', bad), (e: unknown) => isCriuTsError(e) && e.code === 'EIMAGE');
  }
});

test('image table: lookups by magic, name and file name', () => {
  assert.equal(kindByMagic(0x55053847)?.name, 'CORE');
  assert.equal(kindByName('PAGEMAP')?.head, 'pagemap_head');
  assert.equal(kindByFileName('core-12.img')?.name, 'CORE');
  assert.equal(kindByFileName('/x/pagemap-shmem-4672.img')?.pattern, 'pagemap-shmem-%lu.img');
  assert.equal(kindByFileName('pagemap-1.img')?.pattern, 'pagemap-%lu.img');
  assert.equal(kindByFileName('pages-3.img')?.header, 'raw');
  assert.equal(kindByFileName('stats-dump')?.header, 'service');
  assert.equal(kindByFileName('inventory.img')?.header, 'bare');
  assert.equal(kindByFileName('tcp-stream-1a2b.img')?.name, 'TCP_STREAM');
  assert.equal(imageFileName(kindByName('CORE') ?? assert.fail(), 42), 'core-42.img');
  assert.equal(kindByFileName('nothing.txt'), undefined);
});

test('image framing: headers by kind, payloads, head entry', () => {
  const inv = encodeImage('INVENTORY', [{ img_version: 2 }]);
  assert.equal(hex(inv), '16313158' + '02000000' + '0802');
  const stats = encodeImage('STATS', [{}]);
  assert.equal(hex(stats.subarray(0, 8)), '40591055' + '06330957');
  const pd = encodeImage('PIPES_DATA', [{ pipe_id: 1, bytes: 3 }, { pipe_id: 2, bytes: 0 }], [Buffer.from('abc')]);
  const back = decodeImage(pd, 'pipes-data.img');
  assert.deepEqual(back.extras, [Buffer.from('abc'), Buffer.alloc(0)]);
  const pm = decodeImage(encodeImage('PAGEMAP', [{ pages_id: 3 }, { vaddr: 4096n, compat_nr_pages: 0, nr_pages: 2n, flags: 4 }]));
  assert.deepEqual(pm.entries[0], { pages_id: 3 });
  assert.equal(pm.entries[1]?.['nr_pages'], 2n);
});

// Its speed belongs in `npm run bench`, not here: a timed assertion fails on a busy machine.
test('a 1 MB image (12,000 VMAs, 50,000 pagemap entries) decodes whole', () => {
  const entries = Array.from({ length: 50000 }, (_, i) => ({ vaddr: BigInt(i) << 12n, compat_nr_pages: 0, flags: 4, nr_pages: BigInt(i % 50) }));
  const vmas = Array.from({ length: 12000 }, (_, i) => ({ start: BigInt(i) << 20n, end: (BigInt(i) << 20n) + 4096n, pgoff: 0n, shmid: 0n, prot: 3, flags: 0x22, status: 0x201, fd: -1n }));
  const big = encodeImage('MM', [{
    mm_start_code: 0n, mm_end_code: 0n, mm_start_data: 0n, mm_end_data: 0n, mm_start_stack: 0n, mm_start_brk: 0n, mm_brk: 0n,
    mm_arg_start: 0n, mm_arg_end: 0n, mm_env_start: 0n, mm_env_end: 0n, exe_file_id: 1, vmas,
  }]);
  const pm = encodeImage('PAGEMAP', [{ pages_id: 1 }, ...entries]);
  assert.ok(big.length + pm.length > 1_000_000, `${big.length + pm.length} bytes`);
  const a = decodeImage(big);
  const b = decodeImage(pm);
  assert.equal((a.entries[0]?.['vmas'] as unknown[]).length, 12000);
  assert.equal(b.entries.length, 50001);
  assert.equal(b.entries.at(-1)?.['nr_pages'], 49999n % 50n);
});
