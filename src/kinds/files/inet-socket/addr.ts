/**
 * Inet addresses between sockaddr bytes and CRIU's image form: an address is
 * a repeated uint32 holding the network-order bytes as host-endian words (one
 * word for IPv4, four for IPv6), ports are plain numbers.
 */
import { AF_INET, AF_INET6 } from '../../../sys/index.js';

export interface InetAddr {
  /** 1 word (IPv4) or 4 (IPv6) */
  words: number[];
  port: number;
}

/** A sockaddr_in/sockaddr_in6 from getsockname/getpeername; all-zero for none. */
export function fromSockaddr(family: number, sa: Buffer | null): InetAddr {
  const n = family === AF_INET6 ? 4 : 1;
  const words = new Array<number>(n).fill(0);
  if (!sa || sa.length < 8 || sa.readUInt16LE(0) !== family) return { words, port: 0 };
  const off = family === AF_INET6 ? 8 : 4;
  for (let i = 0; i < n && off + 4 * i + 4 <= sa.length; i++) words[i] = sa.readUInt32LE(off + 4 * i);
  return { words, port: sa.readUInt16BE(2) };
}

/** `scopeId`: an IPv6 link-local address's interface (sin6_scope_id). */
export function toSockaddr(family: number, words: readonly number[], port: number, scopeId = 0): Buffer {
  const v6 = family === AF_INET6;
  const b = Buffer.alloc(v6 ? 28 : 16);
  b.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
  b.writeUInt16BE(port, 2);
  const off = v6 ? 8 : 4;
  for (let i = 0; i < (v6 ? 4 : 1); i++) b.writeUInt32LE((words[i] ?? 0) >>> 0, off + 4 * i);
  if (v6) b.writeUInt32LE(scopeId >>> 0, 24);
  return b;
}

/**
 * An IPv6 address that means something only on one interface, so a bind
 * to it names the interface (CRIU's needs_scope_id): link-local fe80::/10
 * and link-local multicast ff02::/16.
 */
export function needsScopeId(words: readonly number[]): boolean {
  const w = (words[0] ?? 0) >>> 0;
  const b0 = w & 0xff;
  const b1 = (w >>> 8) & 0xff;
  return (b0 === 0xfe && (b1 & 0xc0) === 0x80) || (b0 === 0xff && (b1 & 0x0f) === 0x02);
}

/** "127.0.0.1:80" / "[::1]:80" for messages. */
export function addrText(family: number, words: readonly number[], port: number): string {
  const bytes = Buffer.alloc(16);
  words.forEach((w, i) => bytes.writeUInt32LE(w >>> 0, 4 * i));
  if (family !== AF_INET6) return `${[...bytes.subarray(0, 4)].join('.')}:${port}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // Shorten the longest run of zero groups, the usual way.
  const text = groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
  return `[${text}]:${port}`;
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d), as the kernel's four words: the connection runs over IPv4. */
export function isV4Mapped(words: readonly number[]): boolean {
  return (words[0] ?? 0) === 0 && (words[1] ?? 0) === 0 && ((words[2] ?? 0) >>> 0) === 0xffff0000;
}
