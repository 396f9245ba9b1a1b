/**
 * inet_sk_entry.ns_id: the id of the socket's network namespace, the same
 * number as the task's net_ns_id in ids-<pid>.img. The core numbers
 * namespaces and gives kinds no view of it, so the dump remembers which
 * entry came from which task and fills ns_id in files.img once every image
 * is written (the dump scope's last step). A dump outside that scope (no
 * public dump() around it) leaves ns_id out, which restore does not need.
 */
import { join } from 'node:path';
import { readImage, writeImage } from '../../../images/index.js';
import { dumpMemo, dumpScope } from '../dump-extras.js';

/** Record that file `id` is a socket of task `pid`; its ns_id is filled in at the end of the dump. */
export function noteNetNs(id: number, pid: number): void {
  const sc = dumpScope();
  if (!sc) return;
  const owners = dumpMemo('inet-ns-owners', () => {
    const m = new Map<number, number>();
    sc.atEnd.push((dir) => fillNsIds(dir, m));
    return m;
  });
  owners.set(id, pid);
}

function fillNsIds(dir: string, owners: ReadonlyMap<number, number>): void {
  const netNs = new Map<number, number | undefined>();
  const nsOf = (pid: number): number | undefined => {
    if (!netNs.has(pid)) {
      const ids = readImage(join(dir, `ids-${pid}.img`)).entries[0];
      const v = ids?.['net_ns_id'];
      netNs.set(pid, typeof v === 'number' ? v : undefined);
    }
    return netNs.get(pid);
  };
  const path = join(dir, 'files.img');
  const img = readImage(path);
  let changed = false;
  for (const e of img.entries) {
    const isk = e['isk'] as Record<string, unknown> | undefined;
    const pid = owners.get(e['id'] as number);
    if (!isk || pid === undefined) continue;
    const ns = nsOf(pid);
    if (ns !== undefined) {
      isk['ns_id'] = ns;
      changed = true;
    }
  }
  if (changed) writeImage(path, 'FILES', img.entries, img.extras);
}
