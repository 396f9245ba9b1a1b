/**
 * Whole-image decode and encode: header + framed entries + raw payloads.
 */
import { CriuTsError, isCriuTsError } from '../errors.js';
import { encodeMessage, encodeMessageTo } from './codec.js';
import { BufferSource, frames, readHead } from './frame.js';
import { IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, entryMessage, kindByName } from './table.js';

export { entryMessage } from './table.js';
import type { ImageKind } from './table.js';
import { WireWriter } from './wire.js';
import type { LazyFields } from './lazy-fields.js';

export interface DecodedImage {
  kind: ImageKind;
  entries: Record<string, unknown>[];
  /** raw payload after each entry (same index), undefined where the kind has none */
  extras: (Buffer | undefined)[];
}

/**
 * Decode a whole image file's bytes. `file` names the image in errors (and
 * tells pagemap-shmem apart); `lazy`: fields decoded only when read (lazy-fields.ts).
 */
export function decodeImage(buf: Buffer, file?: string, lazy?: LazyFields): DecodedImage {
  const src = new BufferSource(buf);
  const { kind } = readHead(src, file);
  const entries: Record<string, unknown>[] = [];
  const extras: (Buffer | undefined)[] = [];
  for (const fr of frames(src, kind, file, lazy)) {
    entries.push(fr.entry);
    extras.push(fr.extra);
  }
  return { kind, entries, extras };
}

/** Resolve a kind name as crit prints it ("CORE"), failing with EIMAGE for unknown or raw kinds. */
export function requireKind(kindName: string): ImageKind {
  const kind = kindByName(kindName);
  if (kind === undefined || kind.message === undefined) {
    throw new CriuTsError('EIMAGE', `unknown image kind ${JSON.stringify(kindName)}`, { kind: kindName });
  }
  return kind;
}

export function headerBytes(kind: ImageKind): Buffer {
  const w = new WireWriter(8);
  if (kind.header === 'common') w.u32le(IMG_COMMON_MAGIC);
  else if (kind.header === 'service') w.u32le(IMG_SERVICE_MAGIC);
  w.u32le(kind.magic);
  return w.finish();
}

/** One framed entry: u32 length, message, then its payload (if any). */
export function frameEntry(kind: ImageKind, index: number, entry: Readonly<Record<string, unknown>>, extra?: Buffer): Buffer {
  const body = encodeMessage(entryMessage(kind, index), entry);
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(body.length, 0);
  return extra === undefined || extra.length === 0 ? Buffer.concat([len, body]) : Buffer.concat([len, body, extra]);
}

/** Whole image file bytes (header included), by crit's name of the kind. */
export function encodeImage(
  kindName: string,
  entries: readonly Record<string, unknown>[],
  extras: readonly (Buffer | undefined)[] = [],
): Buffer {
  return encodeImageOf(requireKind(kindName), entries, extras);
}

/**
 * Whole image file bytes (header included) of this kind, written into one
 * growing buffer: an entry encoded apart, with its 4-byte length apart,
 * then all concatenated, made three small Buffers per entry, each holding
 * a slice of Node's 8 KiB pool until the concat (a 10,000-fd dump: 25,000
 * entries, 9 MiB of pool slabs live at once, then promoted garbage).
 */
export function encodeImageOf(
  kind: ImageKind,
  entries: readonly Readonly<Record<string, unknown>>[],
  extras: readonly (Buffer | undefined)[] = [],
): Buffer {
  const w = new WireWriter(1024);
  w.raw(headerBytes(kind));
  entries.forEach((entry, i) => {
    try {
      const at = w.pos;
      w.u32le(0);
      encodeMessageTo(w, entryMessage(kind, i), entry);
      w.u32leAt(at, w.pos - at - 4);
      const extra = extras[i];
      if (extra !== undefined && extra.length > 0) w.raw(extra);
    } catch (e) {
      if (isCriuTsError(e) && e.code === 'EIMAGE') {
        throw new CriuTsError('EIMAGE', `${kind.name} entry ${i}: ${e.message}`, { ...e.data, entry: i }, e.cause);
      }
      throw e;
    }
  });
  return w.finish();
}
