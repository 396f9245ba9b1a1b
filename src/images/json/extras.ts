/**
 * The "extra" key: raw payloads after entries, as crit renders them
 * (base64 for data; {"inq","outq"} for TCP streams; u16 list for semaphores;
 * [ipc_msg, data, ...] for message queues) and back.
 */
import { CriuTsError } from '../../errors.js';
import { decodeMessageRaw, encodeMessage } from '../codec.js';
import type { Message } from '../codec.js';
import type { ImageKind } from '../table.js';
import { base64Lines, fromBase64 } from './pretty.js';
import { isJsonObject } from './text.js';
import type { JsonValue } from './text.js';

/** The message converters of to-json.ts and from-json.ts, handed in by them (IPC messages carry a message in their payload). */
export type MessageToJson = (msgName: string, msg: Message, pretty: boolean) => JsonValue;
export type JsonToMessage = (msgName: string, obj: JsonValue) => Message;

function num(entry: Message, field: string): number {
  const v = entry[field];
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0;
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Split a message-queue payload back into (ipc_msg, data) pairs. */
function msgQueue(buf: Buffer): { msg: Message; size: number; data: Buffer }[] {
  const out: { msg: Message; size: number; data: Buffer }[] = [];
  let pos = 0;
  while (pos + 4 <= buf.length) {
    const size = buf.readUInt32LE(pos);
    const msg = decodeMessageRaw('ipc_msg', buf, pos + 4, pos + 4 + size);
    const msize = num(msg, 'msize');
    const data = buf.subarray(pos + 4 + size, pos + 4 + size + msize);
    out.push({ msg, size, data });
    pos += 4 + size + roundUp(msize, 8);
  }
  return out;
}

export function extraToJson(kind: ImageKind, entry: Message, buf: Buffer, messageToJson: MessageToJson): JsonValue {
  const rule = kind.payload;
  if (rule === undefined) return null;
  switch (rule.kind) {
    case 'sum':
      if (kind.name === 'TCP_STREAM') {
        const inq = num(entry, 'inq_len');
        return { inq: base64Lines(buf.subarray(0, inq)), outq: base64Lines(buf.subarray(inq)) };
      }
      return base64Lines(buf);
    case 'ipc-sem': {
      const n = num(entry, 'nsems');
      const vals: JsonValue[] = [];
      for (let i = 0; i < n && 2 * i + 2 <= buf.length; i++) vals.push(buf.readUInt16LE(2 * i));
      return vals;
    }
    case 'ipc-shm':
      return base64Lines(buf.subarray(0, num(entry, 'size')));
    case 'ipc-msg': {
      const out: JsonValue[] = [];
      for (const m of msgQueue(buf)) out.push(messageToJson('ipc_msg', m.msg, false), base64Lines(m.data));
      return out;
    }
    default:
      return base64Lines(buf);
  }
}

/** The size crit's --nopl reports for a payload. */
export function extraSize(kind: ImageKind, entry: Message, buf: Buffer | undefined): number {
  const rule = kind.payload;
  switch (rule?.kind) {
    case 'ipc-sem': return 2 * num(entry, 'nsems');
    case 'ipc-shm': return num(entry, 'size');
    case 'ipc-msg': return msgQueue(buf ?? Buffer.alloc(0)).reduce((s, m) => s + m.size + num(m.msg, 'msize'), 0);
    default: return buf?.length ?? 0;
  }
}

function b64(v: JsonValue, what: string): Buffer {
  const b = typeof v === 'string' ? fromBase64(v) : undefined;
  if (b === undefined) throw new CriuTsError('EJSON', `${what}: expected base64 text`, { field: what });
  return b;
}

function pad(b: Buffer, len: number): Buffer {
  if (b.length >= len) return b.subarray(0, len);
  return Buffer.concat([b, Buffer.alloc(len - b.length)]);
}

/** Payload bytes for an entry from its JSON "extra" (undefined or empty writes nothing, like crit). */
export function extraFromJson(kind: ImageKind, entry: Message, v: JsonValue | undefined, jsonToMessage: JsonToMessage): Buffer | undefined {
  const rule = kind.payload;
  if (rule === undefined || v === undefined || v === null || v === '') return undefined;
  switch (rule.kind) {
    case 'sum':
      if (kind.name === 'TCP_STREAM') {
        if (!isJsonObject(v)) throw new CriuTsError('EJSON', 'TCP_STREAM extra: expected {"inq", "outq"}');
        return Buffer.concat([b64(v['inq'] ?? '', 'extra.inq'), b64(v['outq'] ?? '', 'extra.outq')]);
      }
      return b64(v, 'extra');
    case 'ipc-sem': {
      if (!Array.isArray(v)) throw new CriuTsError('EJSON', 'IPCNS_SEM extra: expected a list of numbers');
      const n = num(entry, 'nsems');
      if (v.length !== n) throw new CriuTsError('EJSON', 'IPCNS_SEM extra: number of semaphores mismatch');
      const out = Buffer.alloc(roundUp(2 * n, 8));
      v.forEach((x, i) => out.writeUInt16LE(Number(x) & 0xffff, 2 * i));
      return out;
    }
    case 'ipc-shm': {
      const size = num(entry, 'size');
      return pad(b64(v, 'extra'), roundUp(size, 4)).fill(0, size);
    }
    case 'ipc-msg': {
      if (!Array.isArray(v)) throw new CriuTsError('EJSON', 'IPCNS_MSG extra: expected [msg, data, ...]');
      const parts: Buffer[] = [];
      for (let i = 0; i + 1 < v.length; i += 2) {
        const msg = jsonToMessage('ipc_msg', v[i] as JsonValue);
        const body = encodeMessage('ipc_msg', msg);
        const len = Buffer.alloc(4);
        len.writeUInt32LE(body.length, 0);
        const msize = num(msg, 'msize');
        const data = b64(v[i + 1] as JsonValue, 'extra').subarray(0, msize);
        parts.push(len, body, pad(data, roundUp(msize, 8)).fill(0, data.length));
      }
      return Buffer.concat(parts);
    }
    default:
      return b64(v, 'extra');
  }
}
