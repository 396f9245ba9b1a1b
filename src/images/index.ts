/**
 * CRIU images: the table of kinds, the protobuf codec, framing and file I/O.
 * Importing this module registers every schema.
 */
import './schema/index.js';

export { decodeMessage, encodeMessage } from './codec.js';
export type { Message } from './codec.js';
export { decodeImage, encodeImage, entryMessage } from './image.js';
export type { DecodedImage } from './image.js';
export { readImage, readImageBytes, writeImage, writeFileAtomic, iterateImage } from './io.js';
export { shareableBuffer } from './hash-worker.js';
export { CHECKSUMS_IMAGE, FileHasher, beginChecksums, checksumEntries, endChecksums, verifyChecksums } from './checksums.js';
export type { ImageStream } from './io.js';
export type { Frame } from './frame.js';
export {
  IMAGE_KINDS, IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, kindByFileName, kindByMagic, kindByName, imageFileName,
} from './table.js';
export type { ImageKind, PayloadRule, HeaderKind } from './table.js';
export * from './ns-ids.js';
