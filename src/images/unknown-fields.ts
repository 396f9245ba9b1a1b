/**
 * Fields a message had on the wire that our schema does not describe (a
 * newer CRIU's): kept on the decoded message and written back in place.
 */
import { WireReader } from './wire.js';

type Message = Record<string, unknown>;

/**
 * Kept as raw tag+value bytes under this symbol (not
 * enumerable: JSON and deep comparisons do not see it) and written back at
 * their place in number order, so a decode/encode round trip loses nothing.
 */
export const UNKNOWN_FIELDS: unique symbol = Symbol('criu-ts.unknownFields');

/** Key under which crit-ts's JSON carries unknown fields (base64 of tag + value each); crit has none. */
export const UNKNOWN_FIELDS_KEY = '_unknown_fields';

export interface UnknownField {
  num: number;
  /** tag and value, exactly as read */
  raw: Buffer;
}

export function unknownFieldsOf(msg: object): readonly UnknownField[] {
  return (msg as { [UNKNOWN_FIELDS]?: UnknownField[] })[UNKNOWN_FIELDS] ?? [];
}

/** Attach raw fields (each a tag + value) to a message; the field number is read from the tag. */
export function setUnknownFields(msg: object, raws: readonly Buffer[]): void {
  const list: UnknownField[] = raws.map((raw) => {
    const r = new WireReader(raw, 0, raw.length);
    const num = r.uint32() >>> 3;
    return { num, raw: Buffer.from(raw) };
  });
  if (list.length === 0) return;
  Object.defineProperty(msg, UNKNOWN_FIELDS, { value: list, enumerable: false, configurable: true, writable: true });
}

/** Skip a field we do not describe, keeping its bytes on the message. */
export function skipKeep(r: WireReader, out: Message, wt: number, num: number, tagPos: number): void {
  r.skip(wt, num);
  keepUnknown(out, num, r.buf.subarray(tagPos, r.pos));
}

export function keepUnknown(out: Message, num: number, raw: Buffer): void {
  const list = (out as { [UNKNOWN_FIELDS]?: UnknownField[] })[UNKNOWN_FIELDS];
  if (list !== undefined) list.push({ num, raw: Buffer.from(raw) });
  else Object.defineProperty(out, UNKNOWN_FIELDS, { value: [{ num, raw: Buffer.from(raw) }], enumerable: false, configurable: true, writable: true });
}

