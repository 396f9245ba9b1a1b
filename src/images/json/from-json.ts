/**
 * crit's JSON back to messages (what `crit encode` reads). Accepts plain and
 * --pretty forms: integers as numbers or strings in any Python base ("0x.."),
 * flag strings, "maj:min" devices, dotted/colon IP addresses, dictionary
 * names, enum names or numbers. Keys the schema does not know are ignored,
 * as crit does.
 */
import { CriuTsError } from '../../errors.js';
import { lookupEnum, lookupMessage } from '../schema/types.js';
import type { FieldDesc, MessageDesc } from '../schema/types.js';
import { messageDesc, setUnknownFields, UNKNOWN_FIELDS_KEY } from '../codec.js';
import type { Message } from '../codec.js';
import { requireKind, entryMessage } from '../image.js';
import { extraFromJson } from './extras.js';
import {
  dictValue, fromBase64, parseDev, parseFlags, parseIp, parsePyInt, quopriDecode,
} from './pretty.js';
import { isJsonObject } from './text.js';
import type { JsonValue } from './text.js';

const WIDE = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INTS = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', ...WIDE]);

function bad(path: string, what: string): CriuTsError {
  return new CriuTsError('EJSON', `${path}: ${what}`, { field: path });
}

function intFrom(fd: FieldDesc, v: JsonValue, path: string): number | bigint {
  let b: bigint | undefined;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw bad(path, `expected an integer, got ${v}`);
    b = BigInt(v);
  } else if (typeof v === 'boolean') b = v ? 1n : 0n;
  else if (typeof v === 'string') {
    const o = fd.opts;
    if (o?.dev === true) b = parseDev(v, o.odev === true);
    else if (o?.flags !== undefined) b = parseFlags(o.flags, v) ?? parsePyInt(v);
    else if (o?.dict !== undefined) {
      const d = dictValue(o.dict, fd.name, v);
      b = d !== undefined ? BigInt(d) : parsePyInt(v);
    } else b = parsePyInt(v);
    if (b === undefined) throw bad(path, `cannot read ${JSON.stringify(v)} as an integer`);
  } else throw bad(path, `expected an integer, got ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v}`);
  return WIDE.has(fd.type) ? b : Number(b);
}

function scalarFrom(fd: FieldDesc, v: JsonValue, path: string): unknown {
  switch (fd.type) {
    case 'bytes': {
      if (typeof v !== 'string') throw bad(path, 'expected a string');
      if (fd.opts?.conv === 'unix_name') return quopriDecode(v);
      const b = fromBase64(v);
      if (b === undefined) throw bad(path, 'bad base64');
      return b;
    }
    case 'enum': {
      const e = lookupEnum(fd.ref ?? '');
      if (typeof v === 'string') {
        if (e?.values[v] === undefined) throw bad(path, `unknown ${fd.ref ?? 'enum'} value ${JSON.stringify(v)}`);
        return v;
      }
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      throw bad(path, 'expected an enum name');
    }
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (typeof v === 'number' || typeof v === 'bigint') return v !== 0 && v !== 0n;
      throw bad(path, 'expected true or false');
    case 'string':
      if (typeof v !== 'string') throw bad(path, 'expected a string');
      return v;
    case 'float': case 'double':
      if (typeof v === 'number') return v;
      if (typeof v === 'bigint') return Number(v);
      if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
      throw bad(path, 'expected a number');
    default:
      if (INTS.has(fd.type)) return intFrom(fd, v, path);
      throw bad(path, `unsupported type ${fd.type}`);
  }
}

function fromTree(desc: MessageDesc, obj: JsonValue, path: string, depth: number): Message {
  if (!isJsonObject(obj)) throw bad(path, 'expected an object');
  if (depth > 64) throw bad(path, 'nested too deep');
  const out: Message = {};
  for (const fd of desc.fields) {
    if (!Object.prototype.hasOwnProperty.call(obj, fd.name)) continue;
    const v = obj[fd.name] as JsonValue;
    const p = `${path}.${fd.name}`;
    const sub = fd.type === 'message' ? lookupMessage(fd.ref ?? '') : undefined;
    if (fd.type === 'message' && sub === undefined) throw bad(p, `no schema for ${fd.ref ?? '?'}`);
    if (fd.rule === 'repeated') {
      if (!Array.isArray(v)) throw bad(p, 'expected a list');
      if (fd.opts?.ipadd === true && typeof v[0] === 'string') {
        const words = parseIp(v[0]);
        if (words === undefined) throw bad(p, `bad IP address ${JSON.stringify(v[0])}`);
        out[fd.name] = words;
        continue;
      }
      out[fd.name] = v.map((item, i) => (sub !== undefined ? fromTree(sub, item, `${p}[${i}]`, depth + 1) : scalarFrom(fd, item, `${p}[${i}]`)));
      continue;
    }
    out[fd.name] = sub !== undefined ? fromTree(sub, v, p, depth + 1) : scalarFrom(fd, v, p);
  }
  const unknown = obj[UNKNOWN_FIELDS_KEY];
  if (unknown !== undefined) {
    const p = `${path}.${UNKNOWN_FIELDS_KEY}`;
    if (!Array.isArray(unknown)) throw bad(p, 'expected a list of base64 strings');
    setUnknownFields(out, unknown.map((x, i) => {
      const b = typeof x === 'string' ? fromBase64(x) : undefined;
      if (b === undefined || b.length === 0) throw bad(`${p}[${i}]`, 'expected base64 of a protobuf field');
      return b;
    }));
  }
  return out;
}

/** One crit JSON dict to a message (values per ../schema/types.ts conventions). */
export function jsonToMessage(msgName: string, obj: JsonValue): Message {
  return fromTree(messageDesc(msgName), obj, msgName, 0);
}

export interface ImageFromJson {
  kindName: string;
  entries: Message[];
  extras: (Buffer | undefined)[];
}

/** A whole `{"magic": ..., "entries": [...]}` document. */
export function jsonToImage(doc: JsonValue): ImageFromJson {
  if (!isJsonObject(doc)) throw bad('image', 'expected an object with "magic" and "entries"');
  const magic = doc['magic'];
  if (typeof magic !== 'string') throw bad('magic', 'expected an image kind name');
  let kind;
  try {
    kind = requireKind(magic);
  } catch (e) {
    throw new CriuTsError('EJSON', `magic: unknown image kind ${JSON.stringify(magic)}`, { field: 'magic' }, e);
  }
  const list = doc['entries'];
  if (!Array.isArray(list)) throw bad('entries', 'expected a list');
  const entries: Message[] = [];
  const extras: (Buffer | undefined)[] = [];
  list.forEach((item, i) => {
    const msgName = entryMessage(kind, i);
    const entry = fromTree(messageDesc(msgName), item, `entries[${i}]`, 0);
    entries.push(entry);
    const extra = isJsonObject(item) ? item['extra'] : undefined;
    if (kind.payload?.kind === 'ghost') {
      extras.push(extra === undefined || extra === null || extra === '' ? undefined : fromBase64(String(extra)));
    } else {
      extras.push(extraFromJson(kind, entry, extra, jsonToMessage));
    }
  });
  return { kindName: kind.name, entries, extras };
}
