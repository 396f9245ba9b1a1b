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

export function toSockaddr(family: number, words: readonly number[], port: number): Buffer {
  const v6 = family === AF_INET6;
  const b = Buffer.alloc(v6 ? 28 : 16);
  b.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
  b.writeUInt16BE(port, 2);
  const off = v6 ? 8 : 4;
  for (let i = 0; i < (v6 ? 4 : 1); i++) b.writeUInt32LE((words[i] ?? 0) >>> 0, off + 4 * i);
  return b;
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
