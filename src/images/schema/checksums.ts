/**
 * criu-ts's own image, not CRIU's: criu-ts-checksums holds one entry per
 * file the dump wrote (every image and pages file), with its size and
 * SHA-256, so a restore can refuse a corrupted file before creating
 * anything (docs/security.md). CRIU never opens a file of that name, so
 * dumps stay CRIU-compatible; crit-ts decodes and shows it.
 * Pages images carry one digest per block as well (images/checksums.ts).
 */
import { defineMessage, f } from './types.js';

defineMessage('criu_ts_checksum_entry', [
  f(1, 'name', 'required', 'string'),
  f(2, 'size', 'required', 'uint64'),
  // The digest: SHA-256, or what `algorithm` names (the field keeps its
  // first name: older dumps and readers know it so).
  f(3, 'sha256', 'required', 'bytes'),
  // Pages images: the SHA-256 of each block_size bytes (the last block
  // shorter), 32 bytes each, so that a lazy-pages daemon can check each
  // run it serves without reading the whole file first; sha256 is then
  // the SHA-256 of these digests.
  f(4, 'block_size', 'optional', 'uint32'),
  f(5, 'blocks', 'optional', 'bytes'),
  // Byte ranges of the file that `criu-ts dedup` (or --auto-dedup) of a
  // later dump of the chain punched out: little-endian u64 pairs (offset,
  // length). The digests above describe the file with those holes (zeros);
  // a restore that would read from them is refused.
  f(6, 'freed', 'optional', 'bytes'),
  // The digest's algorithm, for sha256 and every block digest: absent is
  // "sha256" (dumps before session 10); "vmh256" is criu-ts's own
  // corruption check (images/vmh.ts), 10 times SHA-256's speed here.
  f(7, 'algorithm', 'optional', 'string'),
]);
