/**
 * proto2 encode/decode driven by our schema descriptors (./schema/types.ts).
 * Decoded values follow the conventions stated there: 64-bit integers as
 * bigint, enums by name, bytes as Buffer, absent optionals undefined.
 * Encoding writes fields in ascending number order, as protobuf does, so
 * re-encoding a decoded entry gives back the original bytes.
 */
import { CriuTsError } from '../errors.js';
import { lookupEnum, lookupMessage } from './schema/types.js';
import type { EnumDesc, FieldDesc, MessageDesc } from './schema/types.js';
import { keepUnknown, skipKeep, unknownFieldsOf } from './unknown-fields.js';
import type { UnknownField } from './unknown-fields.js';
import { WireError, WireReader, WireWriter, WT_LEN, U32_MAX, U64_LIMIT } from './wire.js';
import { MAX_DEPTH, WIRE_TYPE, indexOf, messageDesc } from './field-index.js';
import { keepLazy, skim, type LazyFields } from './lazy-fields.js';
import { decodePagemapEntry, encodePagemapEntry } from './pagemap-codec.js';

export type Message = Record<string, unknown>;

export { UNKNOWN_FIELDS, UNKNOWN_FIELDS_KEY, unknownFieldsOf, setUnknownFields } from './unknown-fields.js';
export type { UnknownField } from './unknown-fields.js';

export { messageDesc, wireTypeOf } from './field-index.js';

const enumNames = new WeakMap<EnumDesc, Map<number, string>>();

function enumNameMap(e: EnumDesc): Map<number, string> {
  let m = enumNames.get(e);
  if (m === undefined) {
    m = new Map();
    for (const [k, v] of Object.entries(e.values)) if (!m.has(v)) m.set(v, k);
    enumNames.set(e, m);
  }
  return m;
}

function readScalar(r: WireReader, fd: FieldDesc): unknown {
  switch (fd.type) {
    case 'uint32': return r.uint32();
    case 'int32': return r.int32();
    case 'sint32': return r.sint32();
    case 'uint64': return r.uint64();
    case 'int64': return r.int64();
    case 'sint64': return r.sint64();
    case 'bool': return r.bool();
    case 'fixed32': return r.fixed32();
    case 'sfixed32': return r.sfixed32();
    case 'float': return r.float();
    case 'fixed64': return r.fixed64();
    case 'sfixed64': return r.sfixed64();
    case 'double': return r.double();
    case 'enum': {
      const n = r.int32();
      const e = fd.ref === undefined ? undefined : lookupEnum(fd.ref);
      return (e === undefined ? undefined : enumNameMap(e).get(n)) ?? n;
    }
    case 'string': return r.view(r.length()).toString('utf8');
    case 'bytes': return Buffer.from(r.view(r.length()));
    case 'message': throw new WireError('internal: message read as scalar', r.pos);
  }
}

/** The array of a repeated field, made on its first value. */
function repeatedOf(out: Message, name: string): unknown[] {
  const arr = out[name] as unknown[] | undefined;
  if (arr !== undefined) return arr;
  const made: unknown[] = [];
  out[name] = made;
  return made;
}

function decodeInto(desc: MessageDesc, r: WireReader, end: number, out: Message, depth: number, lazy?: LazyFields): void {
  if (depth > MAX_DEPTH) throw new WireError('messages nested too deep', r.pos);
  const { byNum, required } = indexOf(desc);
  while (r.pos < end) {
    const tagPos = r.pos;
    const tag = r.uint32();
    const num = tag >>> 3;
    const wt = tag & 7;
    if (num === 0) throw new WireError('invalid field number 0', tagPos);
    if (wt > 5 || wt === 4) throw new WireError(wt === 4 ? 'unexpected end of group' : `invalid wire type ${wt}`, tagPos);
    const fd = byNum.get(num);
    if (fd === undefined) {
      skipKeep(r, out, wt, num, tagPos);
      continue;
    }
    const expected = WIRE_TYPE[fd.type];
    if (fd.type === 'message') {
      const sub = fd.ref === undefined ? undefined : lookupMessage(fd.ref);
      if (wt !== WT_LEN || sub === undefined) {
        // Unknown sub-schema (e.g. another architecture's registers): kept as an unknown field.
        skipKeep(r, out, wt, num, tagPos);
        continue;
      }
      const len = r.length();
      const subEnd = r.pos + len;
      const sr = new WireReader(r.buf, r.pos, subEnd);
      if (lazy !== undefined && fd.rule !== 'repeated' && lazy.has(fd)) {
        // Checked now as a decode would, decoded when read (lazy-fields.ts).
        skim(sub, sr, subEnd, depth + 1);
        keepLazy(out, fd.name, sub, r.buf, r.pos, subEnd, depth + 1, decodeInto);
        r.pos = subEnd;
        continue;
      }
      if (fd.rule === 'repeated') {
        const obj: Message = {};
        decodeInto(sub, sr, subEnd, obj, depth + 1);
        const arr = out[fd.name];
        if (Array.isArray(arr)) arr.push(obj);
        else out[fd.name] = [obj];
      } else {
        // A singular message seen twice is merged, as protobuf does.
        const prev = out[fd.name];
        const obj: Message = typeof prev === 'object' && prev !== null ? (prev as Message) : {};
        decodeInto(sub, sr, subEnd, obj, depth + 1);
        out[fd.name] = obj;
      }
      r.pos = subEnd;
      continue;
    }
    if (fd.rule === 'repeated') {
      // Arrays are created on the first value, so an empty packed run leaves the field absent.
      if (wt === WT_LEN && expected !== WT_LEN) {
        // Packed run of scalars (accepted whatever the schema says).
        const len = r.length();
        const pend = r.pos + len;
        if (len > 0) {
          const pr = new WireReader(r.buf, r.pos, pend);
          const arr = repeatedOf(out, fd.name);
          // The common 64-bit case without readScalar's dispatch (a thread core's ~200 xsave words).
          if (fd.type === 'uint64') while (pr.pos < pend) arr.push(pr.uint64());
          else while (pr.pos < pend) arr.push(readScalar(pr, fd));
        }
        r.pos = pend;
      } else if (wt === expected) {
        // CRIU's repeated fields are not packed: a tag before every value. The values that follow
        // with the same tag are read here, without a field look-up each (a thread core has ~400).
        const arr = repeatedOf(out, fd.name);
        const type = fd.type;
        for (;;) {
          arr.push(type === 'uint64' ? r.uint64() : type === 'uint32' ? r.uint32() : readScalar(r, fd));
          const at = r.pos;
          if (at >= end || r.uint32() !== tag) {
            r.pos = at;
            break;
          }
        }
      } else {
        skipKeep(r, out, wt, num, tagPos);
      }
      continue;
    }
    if (wt !== expected) {
      skipKeep(r, out, wt, num, tagPos);
      continue;
    }
    out[fd.name] = readScalar(r, fd);
  }
  if (r.pos !== end) throw new WireError('field runs past the end of its message', r.pos);
  for (const fd of required) {
    // (hasOwn: a lazy field's getter is not run for this)
    if (!Object.hasOwn(out, fd.name)) {
      throw new WireError(`${desc.name}: missing required field ${fd.name}`, end);
    }
  }
}

/**
 * Decode one message from `buf` (the whole buffer). Throws WireError with
 * the position of the fault; callers that know the file wrap it.
 */
export function decodeMessageRaw(msgName: string, buf: Buffer, start = 0, end = buf.length, lazy?: LazyFields): Message {
  if (msgName === 'pagemap_entry') {
    const fast = decodePagemapEntry(buf, start, end);
    if (fast !== undefined) return fast;
  }
  const desc = messageDesc(msgName);
  const out: Message = {};
  decodeInto(desc, new WireReader(buf, start, end), end, out, 0, lazy);
  return out;
}

/** Decode one protobuf message; errors are CriuTsError('EIMAGE') with the byte offset. */
export function decodeMessage(msgName: string, buf: Buffer): Message {
  try {
    return decodeMessageRaw(msgName, buf);
  } catch (e) {
    if (e instanceof WireError) {
      throw new CriuTsError('EIMAGE', `${msgName}: ${e.message} at byte ${e.pos}`, { message: msgName, offset: e.pos }, e);
    }
    throw e;
  }
}

/* ------------------------------------------------------------------ encode */

function encodeError(desc: MessageDesc, fd: FieldDesc, what: string): CriuTsError {
  return new CriuTsError('EIMAGE', `${desc.name}.${fd.name}: ${what}`, { message: desc.name, field: fd.name });
}

// Made once: a bigint shifted per value allocated per call.
const I64_MIN = -(1n << 63n), I64_LIMIT = 1n << 63n;

function toBigInt(desc: MessageDesc, fd: FieldDesc, v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw encodeError(desc, fd, `expected an integer, got ${typeof v}`);
}

function toInt(desc: MessageDesc, fd: FieldDesc, v: unknown, min: number, max: number): number {
  let n: number;
  if (typeof v === 'number' && Number.isInteger(v)) n = v;
  else if (typeof v === 'bigint' && v >= BigInt(min) && v <= BigInt(max)) n = Number(v);
  else throw encodeError(desc, fd, `expected an integer, got ${typeof v === 'bigint' ? String(v) : typeof v}`);
  if (n < min || n > max) throw encodeError(desc, fd, `${n} out of range`);
  return n;
}

function enumNumber(desc: MessageDesc, fd: FieldDesc, v: unknown): number {
  if (typeof v === 'string') {
    const e = fd.ref === undefined ? undefined : lookupEnum(fd.ref);
    const n = e?.values[v];
    if (n === undefined) throw encodeError(desc, fd, `unknown enum value ${JSON.stringify(v)}`);
    return n;
  }
  return toInt(desc, fd, v, -0x80000000, 0x7fffffff);
}

function writeScalar(w: WireWriter, desc: MessageDesc, fd: FieldDesc, v: unknown): void {
  switch (fd.type) {
    case 'uint32': w.varint(toInt(desc, fd, v, 0, U32_MAX)); return;
    case 'int32': {
      const n = toInt(desc, fd, v, -0x80000000, 0x7fffffff);
      if (n >= 0) w.varint(n);
      else w.varint64(BigInt(n));
      return;
    }
    case 'enum': {
      const n = enumNumber(desc, fd, v);
      if (n >= 0) w.varint(n);
      else w.varint64(BigInt(n));
      return;
    }
    case 'sint32': {
      const n = toInt(desc, fd, v, -0x80000000, 0x7fffffff);
      w.varint(n >= 0 ? n * 2 : -n * 2 - 1);
      return;
    }
    case 'uint64': case 'int64': {
      const b = toBigInt(desc, fd, v);
      if (b < I64_MIN || b >= U64_LIMIT) throw encodeError(desc, fd, `${b} out of range`);
      w.varint64(b);
      return;
    }
    case 'sint64': {
      const b = toBigInt(desc, fd, v);
      if (b < I64_MIN || b >= I64_LIMIT) throw encodeError(desc, fd, `${b} out of range`);
      w.varint64(b >= 0n ? b << 1n : (-b << 1n) - 1n);
      return;
    }
    case 'bool':
      if (typeof v !== 'boolean') throw encodeError(desc, fd, `expected a boolean, got ${typeof v}`);
      w.varint(v ? 1 : 0);
      return;
    case 'fixed32': w.u32le(toInt(desc, fd, v, 0, U32_MAX)); return;
    case 'sfixed32': w.i32le(toInt(desc, fd, v, -0x80000000, 0x7fffffff)); return;
    case 'fixed64': case 'sfixed64': w.u64le(toBigInt(desc, fd, v)); return;
    case 'float':
      if (typeof v !== 'number') throw encodeError(desc, fd, 'expected a number');
      w.f32le(v);
      return;
    case 'double':
      if (typeof v !== 'number') throw encodeError(desc, fd, 'expected a number');
      w.f64le(v);
      return;
    case 'string':
      if (typeof v !== 'string') throw encodeError(desc, fd, `expected a string, got ${typeof v}`);
      w.bytes(Buffer.from(v, 'utf8'));
      return;
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw encodeError(desc, fd, 'expected a Buffer');
      w.bytes(v);
      return;
    case 'message':
      throw encodeError(desc, fd, 'internal: message written as scalar');
  }
}

/** A repeated uint32/uint64 item (a thread core's FPU and AVX registers) without writeScalar's dispatch, but for the rare cases. */
function writeUnsigned(w: WireWriter, desc: MessageDesc, fd: FieldDesc, v: unknown): void {
  if (typeof v === 'number') {
    if (v >= 0 && v <= (fd.type === 'uint32' ? U32_MAX : Number.MAX_SAFE_INTEGER) && Number.isInteger(v)) {
      w.varint(v);
      return;
    }
  } else if (typeof v === 'bigint' && fd.type === 'uint64' && v >= 0n && v < U64_LIMIT) {
    w.varint64(v);
    return;
  }
  writeScalar(w, desc, fd, v);
}

function encodeInto(w: WireWriter, desc: MessageDesc, obj: Message, depth: number): void {
  if (depth > MAX_DEPTH) throw new CriuTsError('EIMAGE', `${desc.name}: messages nested too deep`, { message: desc.name });
  const unknown = unknownFieldsOf(obj);
  let u = 0;
  for (const fd of desc.fields) {
    // Unknown fields go back between the known ones, in number order (as protobuf wrote them).
    while (u < unknown.length && (unknown[u] as UnknownField).num < fd.num) w.raw((unknown[u++] as UnknownField).raw);
    const v = obj[fd.name];
    if (v === undefined || v === null) {
      if (fd.rule === 'required') throw encodeError(desc, fd, 'missing required field');
      continue;
    }
    if (fd.type === 'message') {
      const sub = messageDesc(fd.ref ?? '');
      const items = fd.rule === 'repeated' ? v : [v];
      if (!Array.isArray(items)) throw encodeError(desc, fd, 'expected an array');
      for (const item of items) {
        if (typeof item !== 'object' || item === null || Array.isArray(item)) throw encodeError(desc, fd, 'expected an object');
        w.tag(fd.num, WT_LEN);
        const start = w.beginLen();
        encodeInto(w, sub, item as Message, depth + 1);
        w.endLen(start);
      }
      continue;
    }
    if (fd.rule === 'repeated') {
      if (!Array.isArray(v)) throw encodeError(desc, fd, 'expected an array');
      if (v.length === 0) continue;
      const put = fd.type === 'uint32' || fd.type === 'uint64' ? writeUnsigned : writeScalar;
      if (fd.packed === true && WIRE_TYPE[fd.type] !== WT_LEN) {
        w.tag(fd.num, WT_LEN);
        const start = w.beginLen();
        for (const item of v) put(w, desc, fd, item);
        w.endLen(start);
      } else {
        const wt = WIRE_TYPE[fd.type];
        for (const item of v) {
          w.tag(fd.num, wt);
          put(w, desc, fd, item);
        }
      }
      continue;
    }
    w.tag(fd.num, WIRE_TYPE[fd.type]);
    writeScalar(w, desc, fd, v);
  }
  while (u < unknown.length) w.raw((unknown[u++] as UnknownField).raw);
}

/** Encode one message (no length prefix). Errors are CriuTsError('EIMAGE') naming the field. */
export function encodeMessage(msgName: string, obj: Readonly<Record<string, unknown>>): Buffer {
  const w = new WireWriter();
  encodeMessageTo(w, msgName, obj);
  return w.finish();
}

/** Encode one message (no length prefix) at the end of what `w` holds. */
export function encodeMessageTo(w: WireWriter, msgName: string, obj: Readonly<Record<string, unknown>>): void {
  if (msgName === 'pagemap_entry' && encodePagemapEntry(w, obj)) return;
  encodeInto(w, messageDesc(msgName), obj as Message, 0);
}
