/**
 * Decoded messages and images to crit's JSON tree (what `crit decode` prints,
 * plain or --pretty). Key order is ascending field number, like protobuf's
 * ListFields(); only present fields appear; repeated fields only when non-empty.
 */
import { lookupMessage } from '../schema/types.js';
import type { FieldDesc, MessageDesc } from '../schema/types.js';
import { messageDesc, unknownFieldsOf, UNKNOWN_FIELDS_KEY } from '../codec.js';
import type { Message } from '../codec.js';
import type { DecodedImage } from '../image.js';
import { entryMessage } from '../table.js';
import { extraToJson, extraSize } from './extras.js';
import {
  base64Lines, devString, dictName, flagsString, hexString, ipString, quopriEncode,
} from './pretty.js';
import type { JsonObject, JsonValue } from './text.js';

function isInt(v: unknown): v is number | bigint {
  return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
}

function castOne(fd: FieldDesc, v: unknown, pretty: boolean, hex: boolean): JsonValue {
  const isHex = hex || fd.opts?.hex === true;
  if (fd.type === 'message') {
    const sub = lookupMessage(fd.ref ?? '');
    return sub === undefined ? {} : toJsonTree(sub, v as Message, pretty, isHex);
  }
  if (fd.type === 'bytes') {
    const b = v instanceof Uint8Array ? v : Buffer.alloc(0);
    return fd.opts?.conv === 'unix_name' ? quopriEncode(b) : base64Lines(b);
  }
  if (fd.type === 'enum' || fd.type === 'string') return typeof v === 'string' || typeof v === 'number' ? v : String(v);
  if (fd.type === 'bool') return v === true;
  if (fd.type === 'float' || fd.type === 'double') return typeof v === 'number' ? v : Number(v);
  if (!isInt(v)) return null;
  if (pretty) {
    if (isHex) return hexString(v);
    if (fd.opts?.dev === true) return devString(v, fd.opts.odev === true);
    if (fd.opts?.flags !== undefined) return flagsString(fd.opts.flags, v) ?? hexString(v);
    if (fd.opts?.dict !== undefined) return dictName(fd.opts.dict, fd.name, v) ?? v;
  }
  return v;
}

/** One message as crit's dict. `hex` is inherited from a parent field marked hex. */
export function toJsonTree(desc: MessageDesc, msg: Message, pretty: boolean, hex = false): JsonObject {
  const out: JsonObject = {};
  for (const fd of desc.fields) {
    const v = msg[fd.name];
    if (v === undefined) continue;
    if (fd.rule === 'repeated') {
      if (!Array.isArray(v) || v.length === 0) continue;
      if (pretty && fd.opts?.ipadd === true) {
        const s = ipString(v.map((x) => Number(x)));
        if (s !== undefined) {
          out[fd.name] = [s];
          continue;
        }
      }
      out[fd.name] = v.map((item) => castOne(fd, item, pretty, hex));
      continue;
    }
    out[fd.name] = castOne(fd, v, pretty, hex);
  }
  // Fields our schema does not know (crit would drop them): carried so that encode gives the same bytes.
  const unknown = unknownFieldsOf(msg);
  if (unknown.length > 0) out[UNKNOWN_FIELDS_KEY] = unknown.map((x) => x.raw.toString('base64'));
  return out;
}

export function messageToJson(msgName: string, msg: Message, pretty = false): JsonObject {
  return toJsonTree(messageDesc(msgName), msg, pretty);
}

/** crit's "... <SIZE>" for --nopl (Python's human_readable). */
export function humanSize(n: number): string {
  let num = n;
  for (const unit of ['', 'K', 'M', 'G', 'T', 'P', 'E', 'Z']) {
    if (num < 1024) return Number.isInteger(num) ? `${Math.trunc(num)}${unit}B` : `${num.toFixed(1)}${unit}B`;
    num /= 1024;
  }
  return `${num.toFixed(1)}YB`;
}

export interface ToJsonOptions {
  pretty?: boolean;
  /** show payload sizes instead of payloads (crit show --nopl) */
  nopl?: boolean;
}

/** The whole `{"magic": ..., "entries": [...]}` document. */
export function imageToJson(img: DecodedImage, opts: ToJsonOptions = {}): JsonObject {
  const pretty = opts.pretty === true;
  const kind = img.kind;
  const ghost = kind.payload?.kind === 'ghost';
  const entries: JsonValue[] = img.entries.map((entry, i) => {
    const msgName = entryMessage(kind, i);
    const obj = messageToJson(msgName, entry, pretty);
    if (kind.payload === undefined) return obj;
    const extra = img.extras[i];
    if (ghost) {
      // crit prints ghost data only when not hiding payloads, and never for a chunked head.
      if (extra !== undefined && opts.nopl !== true) obj['extra'] = base64Lines(extra);
      return obj;
    }
    // A SysV segment whose pages are in pagemap-shmem-<id>.img has no payload to show.
    if (extra === undefined && kind.payload.kind === 'ipc-shm' && entry['in_pagemaps'] === true) return obj;
    if (opts.nopl === true) obj['extra'] = `... <${humanSize(extraSize(kind, entry, extra))}>`;
    else obj['extra'] = extraToJson(kind, entry, extra ?? Buffer.alloc(0), messageToJson);
    return obj;
  });
  return { magic: kind.name, entries };
}
