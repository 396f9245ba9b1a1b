/**
 * criu-ts's own image, not CRIU's: criu-ts-checksums holds one entry per
 * file the dump wrote (every image and pages file), with its size and
 * SHA-256, so a restore can refuse a corrupted file before creating
 * anything (docs/security.md). CRIU never opens a file of that name, so
 * dumps stay CRIU-compatible; crit-ts decodes and shows it.
 */
import { defineMessage, f } from './types.js';

defineMessage('criu_ts_checksum_entry', [
  f(1, 'name', 'required', 'string'),
  f(2, 'size', 'required', 'uint64'),
  f(3, 'sha256', 'required', 'bytes'),
]);
