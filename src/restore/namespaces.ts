/**
 * Namespaces at restore: criu-ts cannot create namespaces yet, so a dump
 * whose tasks lived in namespaces of their own is refused before anything
 * is created, rather than restored into criu-ts's namespaces.
 */
import { CriuTsError } from '../errors.js';
import { NS_KINDS, NS_ID_FIELD } from '../images/index.js';
import type { TaskKobjIdsEntry } from '../images/messages.js';

/**
 * Restore side: a task whose namespace ids differ from the dumper's own
 * (inventory root_ids) was in a namespace of its own. criu-ts cannot make
 * namespaces yet, and restoring the task into ours would change its world.
 */
export function refuseForeignNamespaceIds(pid: number, ids: TaskKobjIdsEntry, rootIds: TaskKobjIdsEntry | undefined): void {
  if (rootIds === undefined) return;
  for (const kind of NS_KINDS) {
    const field = NS_ID_FIELD[kind];
    const want = rootIds[field];
    const got = ids[field];
    if (want === undefined || got === undefined || want === got) continue;
    throw new CriuTsError(
      'EUNSUPPORTED',
      `task ${pid} was dumped in its own ${kind} namespace (ns id ${got}, the dumper's is ${want}): criu-ts cannot restore namespaces yet`,
      { pid, namespace: kind, nsId: got, rootNsId: want },
    );
  }
}
