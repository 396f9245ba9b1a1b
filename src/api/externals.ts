/**
 * CRIU's `--external TYPE[ID]:VALUE` list (RPC `external`), and the older
 * options that add to it (`--veth-pair IN=OUT[@BRIDGE]`, RPC `veths`):
 * each entry is read here into what the kind that uses it takes. Known:
 *
 * - `veth[IN]:OUT[@BRIDGE]` (restore): the veth IN of the tree's net
 *   namespace, whose peer was outside, gets its peer OUT made in criu-ts's
 *   namespace, attached to BRIDGE when given (kinds/ns/net-devices.ts);
 * - `macvlan[IN]:OUTDEV` (restore): the macvlan IN is made again on OUTDEV,
 *   a device of criu-ts's namespace;
 * - `net[INODE]:KEY` (dump): the net namespace with that inode (as
 *   /proc/PID/ns/net shows it, decimal) is not the tree's to save: the dump
 *   records only KEY, and the restore puts the tree into the namespace the
 *   caller hands over as `--inherit-fd fd[N]:KEY` (runc does this for a
 *   container whose network namespace was made by someone else, e.g. CNI);
 * - `netdev[IN]:OUT` (restore): the veth IN, whose peer was outside, is
 *   not made: OUT, a veth the caller made in criu-ts's namespace, is moved
 *   into the new one as IN, with IN's ifindex, mtu and address (CRIU's
 *   move of a pre-created veth).
 *
 * At dump veth, macvlan and netdev are accepted and unused, as CRIU keeps them; at
 * restore net[] is (CRIU reads it from the images). Any other type is
 * refused with one line until a kind takes it.
 */
import { CriuTsError } from '../errors.js';
import { EOPNOTSUPP } from '../sys/index.js';
import { externalFileKey } from './external-files.js';

/** What an RPC client reads for an --external type criu-ts does not take (CRIU's ENOTSUP for what it lacks). */
import type { ExternalNetNs, MacvlanLower, NetdevMoved, VethPeerOut } from '../kinds/index.js';

export interface Externals {
  vethPairs: VethPeerOut[];
  macvlans: MacvlanLower[];
  /** net[INODE]:KEY, for the dump */
  netNs: ExternalNetNs[];
  netdevs: NetdevMoved[];
}

/** An interface name as the kernel takes it (IFNAMSIZ 16, no '/', ':' or blank). */
const IFNAME = /^[^\s/:@=]{1,15}$/;

function bad(entry: string, why: string): CriuTsError {
  return new CriuTsError('EUSAGE', `--external ${entry}: ${why}`, { external: entry });
}

/** `OUT[@BRIDGE]` of a veth's outside end. */
function outside(entry: string, inside: string, value: string): VethPeerOut {
  const at = value.indexOf('@');
  const out = at < 0 ? value : value.slice(0, at);
  const bridge = at < 0 ? undefined : value.slice(at + 1);
  if (!IFNAME.test(out)) throw bad(entry, `${JSON.stringify(out)} is not an interface name`);
  if (bridge !== undefined && !IFNAME.test(bridge)) throw bad(entry, `${JSON.stringify(bridge)} is not a bridge name`);
  return bridge === undefined ? { inside, outside: out } : { inside, outside: out, bridge };
}

/**
 * Read `external` (CRIU's form, as given) and `vethPairs` (from
 * --veth-pair / RPC veths) for `op`; refuse what no kind takes.
 */
export function readExternals(external: readonly string[], vethPairs: readonly VethPeerOut[], op: 'dump' | 'restore'): Externals {
  const got: Externals = { vethPairs: [], macvlans: [], netNs: [], netdevs: [] };
  const add = (p: VethPeerOut, shown: string): void => {
    if (!IFNAME.test(p.inside)) throw bad(shown, `${JSON.stringify(p.inside)} is not an interface name`);
    if (got.vethPairs.some((x) => x.inside === p.inside)) throw bad(shown, `veth ${p.inside} is given twice`);
    got.vethPairs.push(p);
  };
  for (const v of vethPairs) add(outside(`veth[${v.inside}]:${v.outside}`, v.inside, v.bridge === undefined ? v.outside : `${v.outside}@${v.bridge}`), `veth[${v.inside}]`);
  for (const e of external) {
    // file[MNT_ID:INODE] and tty[RDEV:DEV] name open files for the dump (api/external-files.ts); a restore takes them through --inherit-fd.
    if (externalFileKey(e) !== undefined) continue;
    const m = /^([a-z]+)\[([^\]]*)\]:(.*)$/.exec(e);
    const type = m?.[1] ?? /^([a-z]+)\[/.exec(e)?.[1];
    if (m === null || type === undefined) {
      if (type === 'veth' || type === 'macvlan') throw bad(e, `expected ${type}[NAME]:VALUE`);
      if (type === 'unix') throw bad(e, 'expected unix[INODE], the socket\'s inode in decimal');
      throw new CriuTsError('EUNSUPPORTED', `--external ${e}: not supported yet (criu-ts takes veth[IN]:OUT[@BRIDGE], macvlan[IN]:OUTDEV, netdev[IN]:OUT, net[INODE]:KEY, file[MNT_ID:INODE], tty[RDEV:DEV] and unix[INODE])`, { external: e, errno: EOPNOTSUPP });
    }
    const [, , id = '', value = ''] = m;
    if (type === 'veth') {
      add(outside(e, id, value), e);
    } else if (type === 'macvlan') {
      if (!IFNAME.test(id) || !IFNAME.test(value)) throw bad(e, 'expected macvlan[IN]:OUTDEV, both interface names');
      if (got.macvlans.some((x) => x.inside === id)) throw bad(e, `macvlan ${id} is given twice`);
      got.macvlans.push({ inside: id, lower: value });
    } else if (type === 'net') {
      if (!/^\d+$/.test(id) || value === '') throw bad(e, 'expected net[INODE]:KEY, the inode in decimal as /proc/PID/ns/net shows it');
      const inode = Number(id);
      if (got.netNs.some((x) => x.inode === inode)) throw bad(e, `net namespace ${inode} is given twice`);
      got.netNs.push({ inode, key: value });
    } else if (type === 'netdev') {
      if (!IFNAME.test(id) || !IFNAME.test(value)) throw bad(e, 'expected netdev[IN]:OUT, both interface names');
      if (got.netdevs.some((x) => x.inside === id) || got.vethPairs.some((x) => x.inside === id)) throw bad(e, `device ${id} is given twice`);
      got.netdevs.push({ inside: id, outside: value });
    } else {
      throw new CriuTsError('EUNSUPPORTED', `--external ${e}: ${type}[...] is not supported yet (criu-ts takes veth[IN]:OUT[@BRIDGE], macvlan[IN]:OUTDEV, netdev[IN]:OUT, net[INODE]:KEY, file[MNT_ID:INODE], tty[RDEV:DEV] and unix[INODE])`, { external: e, errno: EOPNOTSUPP });
    }
  }
  // At dump veths, macvlans and netdevs describe the restore to come: CRIU keeps them and uses none.
  // At restore an external net namespace is known from the images, and given with --inherit-fd.
  return op === 'dump' ? { vethPairs: [], macvlans: [], netNs: got.netNs, netdevs: [] } : { ...got, netNs: [] };
}
