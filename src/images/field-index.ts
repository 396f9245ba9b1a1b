/**
 * What the codec and the lazy fields (lazy-fields.ts) both need of a
 * message's schema: each field's wire type, the fields by number, the
 * required ones.
 */
import { CriuTsError } from '../errors.js';
import { lookupMessage } from './schema/types.js';
import type { FieldDesc, MessageDesc, ScalarType } from './schema/types.js';
import { WT_FIXED32, WT_FIXED64, WT_LEN, WT_VARINT } from './wire.js';

/** Nesting deeper than this is garbage, not a CRIU image (and would exhaust the stack). */
export const MAX_DEPTH = 64;

export const WIRE_TYPE: Record<ScalarType | 'enum' | 'message', number> = {
  double: WT_FIXED64, float: WT_FIXED32,
  int32: WT_VARINT, int64: WT_VARINT, uint32: WT_VARINT, uint64: WT_VARINT,
  sint32: WT_VARINT, sint64: WT_VARINT, bool: WT_VARINT, enum: WT_VARINT,
  fixed32: WT_FIXED32, sfixed32: WT_FIXED32, fixed64: WT_FIXED64, sfixed64: WT_FIXED64,
  string: WT_LEN, bytes: WT_LEN, message: WT_LEN,
};

export function wireTypeOf(type: FieldDesc['type']): number {
  return WIRE_TYPE[type];
}

/** Schema lookups; a message name nobody registered is a programming error. */
export function messageDesc(name: string): MessageDesc {
  const d = lookupMessage(name);
  if (d === undefined) throw new CriuTsError('EINTERNAL', `schema: unknown message ${name}`, { message: name });
  return d;
}

export interface FieldIndex {
  byNum: Map<number, FieldDesc>;
  /** the required fields, checked once a message is read */
  required: readonly FieldDesc[];
}

const indexCache = new WeakMap<MessageDesc, FieldIndex>();

export function indexOf(desc: MessageDesc): FieldIndex {
  let idx = indexCache.get(desc);
  if (idx === undefined) {
    idx = { byNum: new Map(desc.fields.map((fd) => [fd.num, fd])), required: desc.fields.filter((fd) => fd.rule === 'required') };
    indexCache.set(desc, idx);
  }
  return idx;
}

