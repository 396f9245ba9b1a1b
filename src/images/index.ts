/**
 * CRIU images: the table of kinds, the protobuf codec, framing and file I/O.
 * Importing this module registers every schema.
 */
import './schema/index.js';

export { decodeMessage, encodeMessage } from './codec.js';
export type { Message } from './codec.js';
export { lazyFields } from './lazy-fields.js';
export type { LazyFields } from './lazy-fields.js';
export { decodeImage, encodeImage, entryMessage } from './image.js';
export type { DecodedImage } from './image.js';
export {
  readImage, readImageBytes, writeImage, writeFileNoFollow, iterateImage, imagePath, loadImage, loadImageIfAny, decodeImageAs, storeImage,
} from './io.js';
export { CHECKSUMS_IMAGE, FileHasher, beginChecksums, blockLayout, checkBlocks, checksumEntries, endChecksums, verifyChecksums, freedRanges, encodeFreed, refuseFreed } from './checksums.js';
export { loadChecksumsLean, hasBlockDigests } from './checksums-lean.js';
export { BLOCK_BYTES, VMH256, digestWith, streamWith } from './block-hash.js';
export { vmhHalves, vmhAvailable } from './vmh.js';
export { deferBlockChecks, checkBeside, type BesideChecks } from './beside-checks.js';
export type { ImageStream, TypedImage } from './io.js';
export type { Frame } from './frame.js';
export {
  IMAGE_KINDS, IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, kindByFileName, kindByKey, kindByMagic, kindByName, imageFile, imageFileName, imageIdOf,
} from './table.js';
export type {
  ImageKind, PayloadRule, HeaderKind, ImageKey, ImageId, ProtoImageKey, RawImageKey, EntryOf, EntriesOf,
} from './table.js';
export * from './ns-ids.js';
export * from './flags.js';
