/**
 * JSON text exactly as Python's json module writes it (crit's output), and a
 * parser that keeps integers exact: u64 values above 2^53 occur in images
 * (rlimits, registers), so integers that do not fit a double become bigint.
 */
import { CriuTsError } from '../../errors.js';

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/* ----------------------------------------------------------------- output */

/** Python json's ensure_ascii string escaping. */
export function pyString(s: string): string {
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(run, i);
    run = i + 1;
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      default: out += `\\u${c.toString(16).padStart(4, '0')}`;
    }
  }
  return `${out}${s.slice(run)}"`;
}

/** Python float repr (shortest round-trip, with Python's exponent style). */
export function pyFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return `${n.toFixed(0)}.0`;
  const s = String(n);
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  if (m === null) return s;
  const mant = m[1] ?? '';
  const exp = (m[3] ?? '').padStart(2, '0');
  return `${mant}e${m[2] ?? '+'}${exp}`;
}

function scalar(v: JsonValue): string | undefined {
  if (v === null) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER ? String(v) : pyFloat(v);
  if (typeof v === 'string') return pyString(v);
  return undefined;
}

/** json.dumps(v) (plain) or json.dumps(v, indent=4) (pretty). */
export function stringifyPy(v: JsonValue, pretty: boolean): string {
  const parts: string[] = [];
  const write = (x: JsonValue, level: number): void => {
    const s = scalar(x);
    if (s !== undefined) {
      parts.push(s);
      return;
    }
    const nl = pretty ? `\n${' '.repeat(4 * (level + 1))}` : '';
    const sep = pretty ? `,${nl}` : ', ';
    const close = pretty ? `\n${' '.repeat(4 * level)}` : '';
    if (Array.isArray(x)) {
      if (x.length === 0) {
        parts.push('[]');
        return;
      }
      parts.push(`[${nl}`);
      x.forEach((item, i) => {
        if (i > 0) parts.push(sep);
        write(item, level + 1);
      });
      parts.push(`${close}]`);
      return;
    }
    const keys = Object.keys(x as JsonObject);
    if (keys.length === 0) {
      parts.push('{}');
      return;
    }
    parts.push(`{${nl}`);
    keys.forEach((key, i) => {
      if (i > 0) parts.push(sep);
      parts.push(`${pyString(key)}: `);
      write((x as JsonObject)[key] as JsonValue, level + 1);
    });
    parts.push(`${close}}`);
  };
  write(v, 0);
  return parts.join('');
}

/* ------------------------------------------------------------------ input */

const MAX_DEPTH = 200;

/** Parse JSON; integers outside the double-safe range come back as bigint. Errors are EJSON with the offset. */
export function parseJson(text: string, file?: string): JsonValue {
  let i = 0;
  const name = file ?? '<json>';
  const fail = (what: string): never => {
    throw new CriuTsError('EJSON', `${name}: bad JSON at byte ${i}: ${what}`, { file: name, offset: i });
  };
  const ws = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    i++; // opening quote
    let out = '';
    let run = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(run, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(run, i);
      const e = text[i + 1];
      i += 2;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = text.slice(i, i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default: i -= 2; fail('bad escape');
      }
      run = i;
    }
  };
  const num = (): number | bigint => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m === null) return fail('bad number');
    const s = m[0];
    i += s.length;
    if (m[2] === undefined && m[3] === undefined) {
      const n = Number(s);
      return Number.isSafeInteger(n) ? n : BigInt(s);
    }
    return Number(s);
  };
  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail('nested too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = Object.create(null) as JsonObject;
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = str();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        obj[key] = value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) { i += 4; return true; }
    if (text.startsWith('false', i)) { i += 5; return false; }
    if (text.startsWith('null', i)) { i += 4; return null; }
    if (text.startsWith('NaN', i)) { i += 3; return NaN; }
    if (text.startsWith('Infinity', i)) { i += 8; return Infinity; }
    if (text.startsWith('-Infinity', i)) { i += 9; return -Infinity; }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return num();
    return fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
  };
  const v = value(0);
  ws();
  if (i < text.length) fail('trailing data');
  return v;
}
