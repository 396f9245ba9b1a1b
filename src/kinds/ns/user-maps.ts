/**
 * A user namespace's uid and gid maps (UidGidExtent: the id inside, the
 * id outside in criu-ts's view, the count): read from /proc, checked,
 * written back, and ids translated through them (kinds/ns/user.ts).
 */
import { CriuTsError } from '../../errors.js';
import { readIdMap } from '../../proc/index.js';
import type { UidGidExtent } from '../../images/messages.js';

/** Task `pid`'s map, as /proc shows it. */
export const readMap = readIdMap;

/** An id outside (criu-ts's view) as the namespace sees it, or undefined when it has no mapping there. */
export function inside(map: readonly UidGidExtent[], id: number): number | undefined {
  for (const e of map) if (id >= e.lower_first && id - e.lower_first < e.count) return e.first + (id - e.lower_first);
  return undefined;
}

/** An id as the namespace sees it, outside (criu-ts's view), or undefined when it has no mapping. */
export function outside(map: readonly UidGidExtent[], id: number): number | undefined {
  for (const e of map) if (id >= e.first && id - e.first < e.count) return e.lower_first + (id - e.first);
  return undefined;
}

/** Refuse a map of an image whose extents are empty, past 32-bit ids or overlapping. */
export function checkMap(file: string, what: string, map: readonly UidGidExtent[]): void {
  const sorted = [...map].sort((a, b) => a.first - b.first);
  for (const [i, e] of sorted.entries()) {
    if (e.count === 0 || e.first + e.count > 2 ** 32 || e.lower_first + e.count > 2 ** 32) {
      throw new CriuTsError('EIMAGE', `${file}: ${what} extent ${e.first} ${e.lower_first} ${e.count} is empty or past the 32-bit ids`, { file });
    }
    const next = sorted[i + 1];
    if (next && e.first + e.count > next.first) throw new CriuTsError('EIMAGE', `${file}: ${what} extents overlap at ${next.first}`, { file });
  }
}

/** The map as /proc/PID/uid_map takes it. */
export function mapText(map: readonly UidGidExtent[]): string {
  return map.map((e) => `${e.first} ${e.lower_first} ${e.count}\n`).join('');
}
