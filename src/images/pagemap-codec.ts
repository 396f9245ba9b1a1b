/**
 * pagemap_entry without the schema walk: the one message a dump writes
 * and a restore or incremental dump reads by the thousand (a final dump
 * of a 1 GiB task that wrote 1% of its pages has 5,000 entries, one run
 * of dirty pages and one PE_PARENT run each). The generic codec spends
 * 1-6 µs per entry on them (field loop, type dispatch, range checks, in
 * the interpreter when the process is fresh, as a CLI run always is):
 * 10-30 ms of a final dump's freeze. These two functions take the common
 * shape only and give up (undefined / false) on anything else, which then
 * goes through the generic codec: same bytes, same objects.
 *
 * Wire (our schema, CRIU's numbers): 1 vaddr uint64, 2 compat_nr_pages
 * uint32, 3 in_parent bool, 4 flags uint32, 5 nr_pages uint64.
 */
import { unknownFieldsOf } from './unknown-fields.js';
import { U32_MAX, U64_LIMIT, type WireWriter } from './wire.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

function isU64(v: unknown): v is bigint {
  return typeof v === 'bigint' && v >= 0n && v < U64_LIMIT;
}

/** Write `e` as pagemap_entry at the end of `w`; false (nothing written) when it is not the plain shape. */
export function encodePagemapEntry(w: WireWriter, e: Readonly<Record<string, unknown>>): boolean {
  const { vaddr, compat_nr_pages: compat, in_parent: inParent, flags, nr_pages: nr } = e;
  if (!isU64(vaddr) || !isU32(compat)) return false;
  if (inParent !== undefined && inParent !== null && typeof inParent !== 'boolean') return false;
  if (flags !== undefined && flags !== null && !isU32(flags)) return false;
  if (nr !== undefined && nr !== null && !isU64(nr)) return false;
  if (unknownFieldsOf(e).length !== 0) return false;
  w.tag(1, 0);
  // As a number where it fits (every user-space address does): varint64 makes a bigint per value.
  if (vaddr <= MAX_SAFE) w.varint(Number(vaddr));
  else w.varint64(vaddr);
  w.tag(2, 0);
  w.varint(compat);
  if (typeof inParent === 'boolean') {
    w.tag(3, 0);
    w.varint(inParent ? 1 : 0);
  }
  if (typeof flags === 'number') {
    w.tag(4, 0);
    w.varint(flags);
  }
  if (typeof nr === 'bigint') {
    w.tag(5, 0);
    if (nr <= MAX_SAFE) w.varint(Number(nr));
    else w.varint64(nr);
  }
  return true;
}

/** Where readSmall left off (module cells, not an object per varint: a pagemap has thousands). */
let nextPos = 0;

/**
 * A varint at `pos` of at most 8 bytes (below 2^56: every address and count
 * a pagemap holds) as a number, exact up to 2^53 (the caller refuses more),
 * its end in nextPos; -1 when it is longer or runs past `end`.
 */
function readSmall(buf: Buffer, pos: number, end: number): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 8 && pos < end; i++) {
    const b = buf[pos++] as number;
    v += (b & 0x7f) * mul;
    if (b < 0x80) {
      nextPos = pos;
      return v;
    }
    mul *= 128;
  }
  return -1;
}

/**
 * Decode buf[start, end) as pagemap_entry; undefined when it is anything
 * but fields 1-5 in ascending order, each once, as varints below 2^53 (the
 * generic decoder then reads it, with its errors and unknown fields).
 */
export function decodePagemapEntry(buf: Buffer, start: number, end: number): Record<string, unknown> | undefined {
  let pos = start;
  let last = 0;
  let vaddr: bigint | undefined;
  let compat: number | undefined;
  let inParent: boolean | undefined;
  let flags: number | undefined;
  let nr: bigint | undefined;
  while (pos < end) {
    const tag = buf[pos++] as number;
    const num = tag >> 3;
    // One-byte tags of wire type 0 (varint) only, fields in ascending order.
    if ((tag & 7) !== 0 || num <= last || num > 5) return undefined;
    last = num;
    const v = readSmall(buf, pos, end);
    if (v < 0 || v > Number.MAX_SAFE_INTEGER) return undefined;
    pos = nextPos;
    switch (num) {
      case 1: vaddr = BigInt(v); break;
      case 2: if (v > U32_MAX) return undefined; compat = v; break;
      case 3: if (v > 1) return undefined; inParent = v === 1; break;
      case 4: if (v > U32_MAX) return undefined; flags = v; break;
      default: nr = BigInt(v); break;
    }
  }
  if (vaddr === undefined || compat === undefined) return undefined;
  const out: Record<string, unknown> = { vaddr, compat_nr_pages: compat };
  if (inParent !== undefined) out['in_parent'] = inParent;
  if (flags !== undefined) out['flags'] = flags;
  if (nr !== undefined) out['nr_pages'] = nr;
  return out;
}
