/**
 * Image files on disk: read whole, stream entry by entry, write atomically
 * (private temp name created with O_EXCL + rename, mode 0600 like CRIU).
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { createOrReplaceFile } from '../sys/replace-file.js';
import { noteWritten } from './checksums.js';
import { CriuTsError } from '../errors.js';
import { decodeImage, encodeImage, encodeImageOf } from './image.js';
import type { DecodedImage } from './image.js';
import { frames, readHead } from './frame.js';
import type { ByteSource, Frame } from './frame.js';
import type { LazyFields } from './lazy-fields.js';
import { entryMessage, imageFile, kindByKey } from './table.js';
import type { EntriesOf, ImageId, ImageKey, ImageKind, ProtoImageKey } from './table.js';

function openImage(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CriuTsError('ENOIMAGE', `${path}: no such image`, { file: path });
    throw new CriuTsError('EIMAGE', `${path}: cannot open: ${(e as Error).message}`, { file: path, offset: 0 }, e);
  }
}

function readAll(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return off === size ? buf : buf.subarray(0, off);
}

/** Read a whole image file into memory (raw bytes). */
export function readImageBytes(path: string): Buffer {
  const fd = openImage(path);
  try {
    return readAll(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

export function readImage(path: string): DecodedImage {
  return decodeImage(readImageBytes(path), path);
}

export function writeImage(
  path: string,
  kindName: string,
  entries: readonly Record<string, unknown>[],
  extras?: readonly (Buffer | undefined)[],
): void {
  writeFileNoFollow(path, encodeImage(kindName, entries, extras));
}

/** The path of image `key` with id `id` in the images dir `dir` (see imageFile). */
export function imagePath(dir: string, key: ImageKey, id?: ImageId): string {
  return join(dir, imageFile(key, id));
}

/** An image read through the table: its entries typed by its kind. */
export interface TypedImage<K extends ProtoImageKey> {
  readonly path: string;
  readonly entries: EntriesOf<K>;
  /** raw payload after each entry (same index), undefined where the kind has none */
  readonly extras: readonly (Buffer | undefined)[];
}

/**
 * Image `key` (id `id`) of the dump in `dir`, or undefined when the dump
 * has none. EIMAGE when the file holds another kind of image, or lacks
 * the first entry its kind starts with.
 */
export function loadImageIfAny<K extends ProtoImageKey>(dir: string, key: K, id?: ImageId): TypedImage<K> | undefined {
  const path = imagePath(dir, key, id);
  if (!existsSync(path)) return undefined;
  return decodeImageAs(key, readImageBytes(path), path);
}

/**
 * The bytes of image `key` (read from `path`) decoded and typed, with the
 * checks of loadImageIfAny: for a caller that keeps the bytes to decode
 * them again later instead of holding what they decode to; `lazy`: fields
 * decoded only when read (lazy-fields.ts).
 */
export function decodeImageAs<K extends ProtoImageKey>(key: K, bytes: Buffer, path: string, lazy?: LazyFields): TypedImage<K> {
  const want = kindByKey(key);
  const img = decodeImage(bytes, path, lazy);
  if (img.kind.magic !== want.magic) {
    throw new CriuTsError('EIMAGE', `${path}: a ${img.kind.name} image, not ${want.name}`, { file: path, offset: 4 });
  }
  // A kind whose first entry is of its own (PAGEMAP's head, a ghost file's entry before its chunks) has one.
  if ((want.head !== undefined || want.chunk !== undefined) && img.entries.length === 0) {
    throw new CriuTsError('EIMAGE', `${path}: empty (a ${want.name} image starts with a ${entryMessage(want, 0)})`, { file: path, offset: 8 });
  }
  // The one place decoded entries take their type: the table says which message each is.
  return { path, entries: img.entries as unknown as EntriesOf<K>, extras: img.extras };
}

/** Image `key` (id `id`) of the dump in `dir`: ENOIMAGE when absent (else as loadImageIfAny). */
export function loadImage<K extends ProtoImageKey>(dir: string, key: K, id?: ImageId): TypedImage<K> {
  const img = loadImageIfAny(dir, key, id);
  if (img === undefined) {
    const path = imagePath(dir, key, id);
    throw new CriuTsError('ENOIMAGE', `${path}: no such image`, { file: path });
  }
  return img;
}

/** Write image `key` (id `id`) into `dir` atomically, its entries typed by its kind. */
export function storeImage<K extends ProtoImageKey>(
  dir: string, key: K, id: ImageId | undefined, entries: EntriesOf<K>, extras?: readonly (Buffer | undefined)[],
): void {
  writeFileNoFollow(imagePath(dir, key, id), encodeImageOf(kindByKey(key), entries as readonly object[] as readonly Readonly<Record<string, unknown>>[], extras));
}

/**
 * Write bytes as `path`, never through a link: a new name is created
 * (O_EXCL) and written in place; whatever was there (a planted symlink, an
 * earlier dump's image) is replaced by a rename from a private temporary
 * name (sys/safe-fs.ts createOrReplaceFile).
 */
export function writeFileNoFollow(path: string, data: Buffer): void {
  createOrReplaceFile(path, data, 0o600);
  noteWritten(path, data);
}

/** Reads a file through a fixed-size window; only ever allocates what a checked length asks for. */
class FileSource implements ByteSource {
  pos = 0;
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;
  private static readonly CHUNK = 1 << 16;

  constructor(private readonly fd: number, readonly size: number) {}

  get buffer(): Buffer {
    return this.window;
  }

  u32(): number {
    const at = this.view(4);
    return this.window.readUInt32LE(at);
  }

  view(n: number): number {
    const inWin = this.pos - this.windowStart;
    if (inWin + n <= this.window.length) {
      this.pos += n;
      return inWin;
    }
    // Not in the window: read() makes a window that starts with these
    // bytes, or (n >= CHUNK) a buffer of their own, which becomes the window.
    const v = this.read(n);
    if (n >= FileSource.CHUNK) {
      this.window = v;
      this.windowStart = this.pos - n;
    }
    return 0;
  }

  read(n: number): Buffer {
    const inWin = this.pos - this.windowStart;
    if (inWin + n <= this.window.length) {
      const v = this.window.subarray(inWin, inWin + n);
      this.pos += n;
      return v;
    }
    if (n >= FileSource.CHUNK) {
      const out = Buffer.allocUnsafe(n);
      const got = readSync(this.fd, out, 0, n, this.pos);
      this.pos += n;
      return got === n ? out : out.subarray(0, got);
    }
    const len = Math.min(FileSource.CHUNK, this.size - this.pos);
    const win = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const r = readSync(this.fd, win, got, len - got, this.pos + got);
      if (r === 0) break;
      got += r;
    }
    this.window = win.subarray(0, got);
    this.windowStart = this.pos;
    const v = this.window.subarray(0, n);
    this.pos += n;
    return v;
  }
}

export interface ImageStream {
  kind: ImageKind;
  entries: Generator<Frame>;
}

/**
 * Stream the entries of a (possibly big) image without reading it whole.
 * The file stays open until the generator finishes or is returned early.
 */
export function iterateImage(path: string): ImageStream {
  const fd = openImage(path);
  let kind: ImageKind;
  let src: FileSource;
  try {
    src = new FileSource(fd, fstatSync(fd).size);
    kind = readHead(src, path).kind;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  function* gen(): Generator<Frame> {
    try {
      yield* frames(src, kind, path);
    } finally {
      closeSync(fd);
    }
  }
  return { kind, entries: gen() };
}
