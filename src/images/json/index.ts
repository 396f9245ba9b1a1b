/**
 * crit's JSON for images: decode to the exact text crit 4.2 prints, and
 * encode crit's JSON (plain or pretty) back to image bytes.
 */
import { CriuTsError, isCriuTsError } from '../../errors.js';
import { decodeImage, encodeImage } from '../image.js';
import { imageToJson } from './to-json.js';
import type { ToJsonOptions } from './to-json.js';
import { jsonToImage } from './from-json.js';
import { parseJson, stringifyPy } from './text.js';

export { parseJson, stringifyPy, pyString } from './text.js';
export type { JsonValue, JsonObject } from './text.js';
export { imageToJson, messageToJson, humanSize } from './to-json.js';
export type { ToJsonOptions } from './to-json.js';
export { jsonToImage, jsonToMessage } from './from-json.js';
export type { ImageFromJson } from './from-json.js';

/** Image bytes to crit's JSON text (no trailing newline, like `crit decode -o FILE`). */
export function imageBytesToJsonText(buf: Buffer, file?: string, opts: ToJsonOptions = {}): string {
  return stringifyPy(imageToJson(decodeImage(buf, file), opts), opts.pretty === true);
}

/** crit's JSON text to image bytes (like `crit encode`). */
export function jsonTextToImageBytes(text: string, file?: string): Buffer {
  try {
    const img = jsonToImage(parseJson(text, file));
    return encodeImage(img.kindName, img.entries, img.extras);
  } catch (e) {
    // Name the input in every message (the parser already does).
    if (isCriuTsError(e) && file !== undefined && !e.message.startsWith(`${file}:`)) {
      throw new CriuTsError(e.code, `${file}: ${e.message}`, { ...e.data, file }, e.cause);
    }
    throw e;
  }
}
