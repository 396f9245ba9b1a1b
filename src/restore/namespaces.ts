/**
 * Namespaces at restore: a dump whose tasks lived in namespaces of their
 * own, of a type no resource kind re-creates, is refused before anything
 * is created, rather than restored into criu-ts's namespaces.
 */
import { CriuTsError } from '../errors.js';
import { NS_KINDS, NS_ID_FIELD, type NsKind } from '../images/index.js';
import type { TaskKobjIdsEntry } from '../images/messages.js';

/**
 * Restore side: a task whose namespace ids differ from the dumper's own
 * (inventory root_ids) was in a namespace of its own. Unless a resource
 * kind re-creates that type (`handled`), restoring the task into ours
 * would change its world.
 */
export function refuseForeignNamespaceIds(
  pid: number, ids: TaskKobjIdsEntry, rootIds: TaskKobjIdsEntry | undefined, handled: ReadonlySet<NsKind>,
): void {
  if (rootIds === undefined) return;
  for (const kind of NS_KINDS) {
    if (handled.has(kind)) continue;
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
