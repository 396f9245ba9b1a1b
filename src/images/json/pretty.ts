/**
 * crit's --pretty renderings of integer fields marked with `(criu)` options:
 * flags tables, dictionaries, device numbers, IP addresses, and the byte
 * encodings (base64 lines, quoted-printable unix names). The tables are
 * crit 4.2's (lib/pycriu/images/pb2dict.py), in the same order.
 */

type FlagTable = readonly (readonly [string, number])[];

const FLAG_TABLES: Readonly<Record<string, FlagTable>> = {
  'mmap.prot': [['PROT_READ', 0x1], ['PROT_WRITE', 0x2], ['PROT_EXEC', 0x4]],
  'mmap.flags': [['MAP_SHARED', 0x1], ['MAP_PRIVATE', 0x2], ['MAP_DROPPABLE', 0x08], ['MAP_ANON', 0x20], ['MAP_GROWSDOWN', 0x0100]],
  'mmap.status': [
    ['VMA_AREA_NONE', 0], ['VMA_AREA_REGULAR', 1 << 0], ['VMA_AREA_STACK', 1 << 1], ['VMA_AREA_VSYSCALL', 1 << 2],
    ['VMA_AREA_VDSO', 1 << 3], ['VMA_AREA_HEAP', 1 << 5], ['VMA_FILE_PRIVATE', 1 << 6], ['VMA_FILE_SHARED', 1 << 7],
    ['VMA_ANON_SHARED', 1 << 8], ['VMA_ANON_PRIVATE', 1 << 9], ['VMA_AREA_SYSVIPC', 1 << 10], ['VMA_AREA_SOCKET', 1 << 11],
    ['VMA_AREA_VVAR', 1 << 12], ['VMA_AREA_AIORING', 1 << 13], ['VMA_AREA_MEMFD', 1 << 14], ['VMA_AREA_SHSTK', 1 << 15],
    ['VMA_AREA_UPROBES', 1 << 17], ['VMA_UNSUPP', 2 ** 31],
  ],
  'rfile.flags': [
    ['O_WRONLY', 0o1], ['O_RDWR', 0o2], ['O_CREAT', 0o100], ['O_EXCL', 0o200], ['O_NOCTTY', 0o400], ['O_TRUNC', 0o1000],
    ['O_APPEND', 0o2000], ['O_NONBLOCK', 0o4000], ['O_DSYNC', 0o10000], ['FASYNC', 0o20000], ['O_DIRECT', 0o40000],
    ['O_LARGEFILE', 0o100000], ['O_DIRECTORY', 0o200000], ['O_NOFOLLOW', 0o400000], ['O_NOATIME', 0o1000000],
    ['O_CLOEXEC', 0o2000000],
  ],
  'pmap.flags': [['PE_PARENT', 1], ['PE_LAZY', 2], ['PE_PRESENT', 4]],
  'seals.flags': [
    ['F_SEAL_SEAL', 0x1], ['F_SEAL_SHRINK', 0x2], ['F_SEAL_GROW', 0x4], ['F_SEAL_WRITE', 0x8], ['F_SEAL_FUTURE_WRITE', 0x10],
  ],
};

/**
 * dict option tables, keyed by table then by *field name* (as crit does).
 * task_state is crit 4.2's table verbatim, although CRIU itself writes
 * 2 = dead, 3 = stopped, 6 = zombie: output must match crit byte for byte.
 */
const DICTS: Readonly<Record<string, Readonly<Record<string, Readonly<Record<number, string>>>>>> = {
  gen: { task_state: { 1: 'Alive', 3: 'Zombie', 6: 'Stopped' } },
  sk: {
    family: { 1: 'UNIX', 2: 'INET', 10: 'INET6', 16: 'NETLINK', 17: 'PACKET' },
    type: { 1: 'STREAM', 2: 'DGRAM', 3: 'RAW', 5: 'SEQPACKET', 10: 'PACKET' },
    state: {
      1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT', 7: 'CLOSE',
      8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN',
    },
    proto: { 0: 'IP', 6: 'TCP', 17: 'UDP', 136: 'UDPLITE' },
  },
};

export function hexString(v: number | bigint): string {
  const b = BigInt(v);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}

/** Flag names in table order joined by " | ", leftover bits as one hex; undefined if the table is unknown. */
export function flagsString(table: string, v: number | bigint): string | undefined {
  const t = FLAG_TABLES[table];
  if (t === undefined) return undefined;
  let rest = BigInt(v);
  const names: string[] = [];
  let all = 0n;
  for (const [name, bit] of t) {
    const b = BigInt(bit);
    all |= b;
    if ((BigInt(v) & b) !== 0n) names.push(name);
  }
  rest &= ~all;
  if (rest !== 0n) names.push(hexString(rest));
  return names.join(' | ');
}

/** Inverse of flagsString: names or numbers (any base) separated by '|'; '' is 0. */
export function parseFlags(table: string, s: string): bigint | undefined {
  const t = FLAG_TABLES[table];
  if (t === undefined) return undefined;
  if (s === '') return 0n;
  let v = 0n;
  for (const part of s.split('|')) {
    const p = part.trim();
    const hit = t.find(([name]) => name === p);
    const n = hit !== undefined ? BigInt(hit[1]) : parsePyInt(p);
    if (n === undefined) return undefined;
    v += n;
  }
  return v;
}

export function dictName(dict: string, field: string, v: number | bigint): string | undefined {
  return DICTS[dict]?.[field]?.[Number(v)];
}

export function dictValue(dict: string, field: string, name: string): number | undefined {
  const t = DICTS[dict]?.[field];
  if (t === undefined) return undefined;
  for (const [k, n] of Object.entries(t)) if (n === name) return Number(k);
  return undefined;
}

/** Python int(s, 0): optional sign, 0x/0o/0b prefixes, decimal without leading zeros, '_' separators. */
export function parsePyInt(s: string): bigint | undefined {
  const m = /^\s*([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0+|[1-9][0-9_]*)\s*$/.exec(s);
  if (m === null) return undefined;
  const body = (m[2] ?? '').replace(/_/g, '');
  if (body === '') return undefined;
  const v = BigInt(body.length > 1 && /^0[oObBxX]/.test(body) ? body.toLowerCase() : body);
  return m[1] === '-' ? -v : v;
}

const MINORBITS = 20;

/** "major:minor": kernel dev_t layout, or glibc's userspace layout for `odev` fields. */
export function devString(v: number | bigint, odev: boolean): string {
  const d = BigInt(v);
  if (odev) {
    const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
    const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
    return `${major}:${minor}`;
  }
  return `${d >> BigInt(MINORBITS)}:${d & ((1n << BigInt(MINORBITS)) - 1n)}`;
}

export function parseDev(s: string, odev: boolean): bigint | undefined {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(s);
  if (m === null) return undefined;
  const major = BigInt(m[1] ?? '0');
  const minor = BigInt(m[2] ?? '0');
  if (odev) {
    return ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
  }
  return (major << BigInt(MINORBITS)) | minor;
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}

/** crit's address rendering: one word is IPv4, four words IPv6 (each word in network order read as host u32). */
export function ipString(words: readonly number[]): string | undefined {
  if (words.length === 1) {
    const v = words[0] ?? 0;
    return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff].join('.');
  }
  if (words.length < 4) return undefined;
  const hextets: number[] = [];
  for (const w of words.slice(0, 4)) {
    const h = swap32(w);
    hextets.push(h >>> 16, h & 0xffff);
  }
  // Python's compressed form: the longest run (of 2 or more) of zero groups becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (hextets[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = hextets.map((h) => h.toString(16));
  if (bestLen < 2) return hex.join(':');
  const left = hex.slice(0, best).join(':');
  const right = hex.slice(best + bestLen).join(':');
  return `${left}::${right}`;
}

/** Inverse of ipString: words as stored in the image. */
export function parseIp(s: string): number[] | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4 !== null) {
    const o = v4.slice(1, 5).map(Number);
    if (o.some((x) => x > 255)) return undefined;
    return [((o[0] ?? 0) | ((o[1] ?? 0) << 8) | ((o[2] ?? 0) << 16) | ((o[3] ?? 0) << 24)) >>> 0];
  }
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseSide = (side: string | undefined): number[] | undefined => {
    if (side === undefined || side === '') return [];
    const out: number[] = [];
    for (const p of side.split(':')) {
      if (p.includes('.')) {
        const w = parseIp(p);
        if (w === undefined) return undefined;
        const h = swap32(w[0] ?? 0);
        out.push(h >>> 16, h & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const l = parseSide(halves[0]);
  const r = halves.length === 2 ? parseSide(halves[1]) : [];
  if (l === undefined || r === undefined) return undefined;
  const fill = 8 - l.length - r.length;
  if ((halves.length === 2 && fill < 1) || (halves.length === 1 && fill !== 0)) return undefined;
  const h = [...l, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...r];
  const words: number[] = [];
  for (let i = 0; i < 8; i += 2) words.push(swap32((((h[i] ?? 0) << 16) | (h[i + 1] ?? 0)) >>> 0));
  return words;
}

/** Python base64.encodebytes: 76-character lines, each ending in "\n"; empty input gives "". */
export function base64Lines(b: Uint8Array): string {
  const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
  let out = '';
  for (let i = 0; i < s.length; i += 76) out += `${s.slice(i, i + 76)}\n`;
  return out;
}

/** Python base64.decodebytes; non-alphabet characters are ignored. */
export function fromBase64(s: string): Buffer | undefined {
  const clean = s.replace(/[\s]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) return undefined;
  return Buffer.from(clean, 'base64');
}

const QP_MAXLINE = 76;

/** Python quopri.encodestring (binascii.b2a_qp, text mode, no quoted tabs). */
export function quopriEncode(data: Uint8Array): string {
  const out: number[] = [];
  let linelen = 0;
  const hex = (c: number): void => {
    const h = c.toString(16).toUpperCase().padStart(2, '0');
    out.push(0x3d, h.charCodeAt(0), h.charCodeAt(1));
  };
  const n = data.length;
  // CRLF style is decided by the first line ending, as binascii does.
  const firstLf = data.indexOf(0x0a);
  const crlf = firstLf > 0 && data[firstLf - 1] === 0x0d;
  const softBreak = (): void => {
    if (crlf) out.push(0x3d, 0x0d, 0x0a);
    else out.push(0x3d, 0x0a);
  };
  for (let i = 0; i < n;) {
    const c = data[i] as number;
    const next = i + 1 < n ? data[i + 1] : undefined;
    const mustQuote = c > 126 || c === 0x3d
      || (c === 0x2e && linelen === 0 && (next === undefined || next === 0x0a || next === 0x0d || next === 0))
      || ((c === 0x09 || c === 0x20) && i + 1 === n)
      || (c < 33 && c !== 0x0d && c !== 0x0a && c !== 0x09 && c !== 0x20);
    if (mustQuote) {
      if (linelen + 3 >= QP_MAXLINE) {
        softBreak();
        linelen = 0;
      }
      hex(c);
      linelen += 3;
      i++;
      continue;
    }
    if (c === 0x0a || (c === 0x0d && next === 0x0a)) {
      linelen = 0;
      const last = out[out.length - 1];
      if (out.length > 0 && (last === 0x20 || last === 0x09)) {
        out.pop();
        hex(last);
      }
      if (crlf) out.push(0x0d, 0x0a);
      else out.push(0x0a);
      i += c === 0x0d ? 2 : 1;
      continue;
    }
    if (i + 1 !== n && next !== 0x0a && linelen + 1 >= QP_MAXLINE) {
      softBreak();
      linelen = 0;
    }
    linelen++;
    out.push(c);
    i++;
  }
  return Buffer.from(out).toString('latin1');
}

/** Python quopri.decodestring (binascii.a2b_qp). */
export function quopriDecode(s: string): Buffer {
  const src = Buffer.from(s, 'latin1');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as number;
    if (c !== 0x3d) {
      out.push(c);
      continue;
    }
    if (i + 1 >= src.length) break; // soft break at end of data
    const a = src[i + 1] as number;
    if (a === 0x0a) {
      i += 1;
      continue;
    }
    if (a === 0x0d && src[i + 2] === 0x0a) {
      i += 2;
      continue;
    }
    const h = String.fromCharCode(a, src[i + 2] ?? 0);
    if (/^[0-9a-fA-F]{2}$/.test(h)) {
      out.push(parseInt(h, 16));
      i += 2;
    } else out.push(c);
  }
  return Buffer.from(out);
}
