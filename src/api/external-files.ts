/**
 * --external for open files (CRIU's syntax): `file[MNT_ID:INODE]` names a
 * file by the mount id the task sees it on and its inode, `tty[RDEV:DEV]`
 * a terminal by its device numbers, all in hex as CRIU prints them. Such an
 * object is outside the tree: the dump records only its key, and the
 * restore takes it from the caller (--inherit-fd fd[N]:KEY). Keys are
 * normalised to CRIU's spelling (lower-case hex, no leading zeros) so they
 * match what the kinds compute. `unix[INODE]` names a unix socket of the
 * tree whose peer is outside (the socket itself comes back by --inherit-fd
 * fd[N]:socket:[INODE]). Other --external kinds (mnt, net, veth) are not
 * this module's.
 */
import { CriuTsError } from '../errors.js';

const HEX_PAIR = /^(file|tty)\[([0-9a-fA-F]+):([0-9a-fA-F]+)\]$/;
/** `unix[INODE]`: a unix socket of the tree (its inode in decimal, as CRIU prints it) whose peer is outside */
const UNIX = /^unix\[(\d+)\]$/;

/** CRIU's key for a `file[..]`/`tty[..]`/`unix[..]` spec, or undefined when the spec is of another kind. */
export function externalFileKey(spec: string): string | undefined {
  const u = UNIX.exec(spec);
  if (u) return `unix[${BigInt(u[1] as string).toString()}]`;
  const m = HEX_PAIR.exec(spec);
  if (!m) return undefined;
  const a = BigInt(`0x${m[2] as string}`).toString(16);
  const b = BigInt(`0x${m[3] as string}`).toString(16);
  return `${m[1] as string}[${a}:${b}]`;
}

/** The keys of a list of file/tty externals; anything else is a usage error naming it. */
export function externalFileKeys(specs: readonly string[] | undefined): Set<string> | undefined {
  if (specs === undefined || specs.length === 0) return undefined;
  const keys = new Set<string>();
  for (const s of specs) {
    const k = externalFileKey(s);
    if (k === undefined) throw new CriuTsError('EUSAGE', `--external ${s}: expected file[MNT_ID:INODE] or tty[RDEV:DEV] (hex), or unix[INODE] (decimal)`, { value: s });
    keys.add(k);
  }
  return keys;
}
