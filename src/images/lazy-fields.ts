/**
 * Fields of a message decoded only when they are read. A restore keeps
 * every thread's core, but reads its FPU state (the XSAVE area: about 70%
 * of a core's bytes, 400 values each behind its own tag) once, to write it
 * into the thread: decoding it up front for every thread, then again when
 * it is used, made up most of the decoding of a 100-process or 1000-thread
 * dump. Such a field is checked as the decode would check it (skim: the
 * same wire errors, the same required fields) but no value is made; a
 * getter decodes its bytes afresh on each read (nothing decoded is held).
 */
import { lookupMessage, type FieldDesc, type MessageDesc } from './schema/types.js';
import { WireError, WireReader, WT_LEN } from './wire.js';
import { MAX_DEPTH, WIRE_TYPE, indexOf, messageDesc } from './field-index.js';

/** The fields to keep lazy in a decode (singular message fields only; others are decoded as usual). */
export type LazyFields = ReadonlySet<FieldDesc>;

/** The set of fields `message.field` for a decode. */
export function lazyFields(...names: readonly (readonly [message: string, field: string])[]): LazyFields {
  const out = new Set<FieldDesc>();
  for (const [m, f] of names) {
    const fd = messageDesc(m).fields.find((x) => x.name === f);
    if (fd?.type === 'message' && fd.rule !== 'repeated') out.add(fd);
  }
  return out;
}

/**
 * Walk a message of `desc` in r up to `end` and throw what decoding it
 * would throw (codec.ts decodeInto), making no value.
 */
export function skim(desc: MessageDesc, r: WireReader, end: number, depth: number): void {
  if (depth > MAX_DEPTH) throw new WireError('messages nested too deep', r.pos);
  const { byNum, required } = indexOf(desc);
  const seen = required.length > 0 ? new Set<number>() : undefined;
  while (r.pos < end) {
    const tagPos = r.pos;
    const tag = r.uint32();
    const num = tag >>> 3;
    const wt = tag & 7;
    if (num === 0) throw new WireError('invalid field number 0', tagPos);
    if (wt > 5 || wt === 4) throw new WireError(wt === 4 ? 'unexpected end of group' : `invalid wire type ${wt}`, tagPos);
    const fd = byNum.get(num);
    if (fd !== undefined) {
      const expected = WIRE_TYPE[fd.type];
      if (fd.type === 'message') {
        const sub = fd.ref === undefined ? undefined : lookupMessage(fd.ref);
        if (wt === WT_LEN && sub !== undefined) {
          const len = r.length();
          const subEnd = r.pos + len;
          skim(sub, new WireReader(r.buf, r.pos, subEnd), subEnd, depth + 1);
          r.pos = subEnd;
          seen?.add(num);
          continue;
        }
      } else if (fd.rule === 'repeated' && wt === WT_LEN && expected !== WT_LEN) {
        // A packed run: each value as its type reads it.
        const len = r.length();
        const pend = r.pos + len;
        const pr = new WireReader(r.buf, r.pos, pend);
        while (pr.pos < pend) pr.skip(expected, num);
        r.pos = pend;
        if (len > 0) seen?.add(num);
        continue;
      } else if (wt === expected) {
        seen?.add(num);
      }
    }
    r.skip(wt, num);
  }
  if (r.pos !== end) throw new WireError('field runs past the end of its message', r.pos);
  for (const fd of required) {
    if (!seen?.has(fd.num)) throw new WireError(`${desc.name}: missing required field ${fd.name}`, end);
  }
}

type Decode = (desc: MessageDesc, r: WireReader, end: number, out: Record<string, unknown>, depth: number) => void;

/** The byte ranges behind each lazy field's getter (a singular message seen twice is merged, as protobuf does). */
const rangesOf = new WeakMap<object, [number, number][]>();

/** Make `out[name]` a getter that decodes `buf[start, end)` (skimmed already) with `decode` each time it is read. */
export function keepLazy(out: Record<string, unknown>, name: string, desc: MessageDesc, buf: Buffer, start: number, end: number, depth: number, decode: Decode): void {
  const prev = Object.getOwnPropertyDescriptor(out, name)?.get;
  const have = prev === undefined ? undefined : rangesOf.get(prev);
  if (have !== undefined) {
    have.push([start, end]);
    return;
  }
  const ranges: [number, number][] = [[start, end]];
  const get = (): Record<string, unknown> => {
    const obj: Record<string, unknown> = {};
    for (const [s, e] of ranges) decode(desc, new WireReader(buf, s, e), e, obj, depth);
    return obj;
  };
  rangesOf.set(get, ranges);
  Object.defineProperty(out, name, { get, enumerable: true, configurable: true });
}
