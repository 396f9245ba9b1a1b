/**
 * How our protobuf schemas are written down. We describe CRIU's messages
 * (proto2, CRIU's field numbers and types) as plain data, register them by
 * their proto message name, and the codec (../codec.ts) and crit's JSON
 * printer work from these descriptors alone. Nothing here is generated from
 * CRIU's .proto files: each schema file is our own transcription of the
 * wire facts.
 *
 * Value conventions for decoded messages (what dump/restore code sees):
 * - 64-bit integer types (uint64, int64, sint64, fixed64, sfixed64) are bigint;
 *   every other number type is number.
 * - enums are their value *name* (string); the encoder also accepts a number.
 *   An unknown enum number decodes to the number.
 * - bytes are Buffer; string is string; bool is boolean.
 * - repeated fields are arrays (absent when empty); optional fields are
 *   absent (undefined) when not on the wire; required fields are always there.
 * - field order on the wire is ascending field number (as protobuf writes it).
 */

export type ScalarType =
  | 'double' | 'float'
  | 'int32' | 'int64' | 'uint32' | 'uint64' | 'sint32' | 'sint64'
  | 'fixed32' | 'fixed64' | 'sfixed32' | 'sfixed64'
  | 'bool' | 'string' | 'bytes';

export type FieldRule = 'required' | 'optional' | 'repeated';

/** CRIU's `(criu)` field options; they change only crit's --pretty output. */
export interface CritFieldOptions {
  hex?: true;
  ipadd?: true;
  /** name of a flags table (e.g. "mmap.prot") */
  flags?: string;
  dev?: true;
  odev?: true;
  /** name of a dictionary table (e.g. "sk.family") */
  dict?: string;
  /** custom conversion name (e.g. "unix_name") */
  conv?: string;
}

export interface FieldDesc {
  readonly name: string;
  readonly num: number;
  readonly rule: FieldRule;
  /** a scalar type, or 'enum' / 'message' with `ref` naming the type */
  readonly type: ScalarType | 'enum' | 'message';
  readonly ref?: string;
  /** repeated scalars written packed ([packed=true] in the .proto) */
  readonly packed?: boolean;
  readonly opts?: CritFieldOptions;
}

export interface MessageDesc {
  readonly name: string;
  readonly fields: readonly FieldDesc[];
}

export interface EnumDesc {
  readonly name: string;
  readonly values: Readonly<Record<string, number>>;
}

const messages = new Map<string, MessageDesc>();
const enums = new Map<string, EnumDesc>();

export function defineMessage(name: string, fields: readonly FieldDesc[]): MessageDesc {
  if (messages.has(name)) throw new Error(`schema: message ${name} defined twice`);
  const sorted = [...fields].sort((a, b) => a.num - b.num);
  const desc: MessageDesc = { name, fields: sorted };
  messages.set(name, desc);
  return desc;
}

export function defineEnum(name: string, values: Record<string, number>): EnumDesc {
  if (enums.has(name)) throw new Error(`schema: enum ${name} defined twice`);
  const desc: EnumDesc = { name, values };
  enums.set(name, desc);
  return desc;
}

export function lookupMessage(name: string): MessageDesc | undefined {
  return messages.get(name);
}

export function lookupEnum(name: string): EnumDesc | undefined {
  return enums.get(name);
}

export function allMessages(): IterableIterator<MessageDesc> {
  return messages.values();
}

export function allEnums(): IterableIterator<EnumDesc> {
  return enums.values();
}

/** Shorthand used by every schema file: f(num, name, rule, type, { ref, packed, opts }). */
export function f(
  num: number,
  name: string,
  rule: FieldRule,
  type: FieldDesc['type'],
  more: { ref?: string; packed?: boolean; opts?: CritFieldOptions } = {},
): FieldDesc {
  return { num, name, rule, type, ...more };
}
