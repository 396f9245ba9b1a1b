/**
 * Where the CRIU 4.2 test vectors live: `../shared/vectors` beside the repo
 * root (CI runs from a fresh clone with shared/ copied next to it).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repo root: the nearest directory above this file with criu-ts's package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'criu-ts') return dir;
      } catch {
        // not ours; keep climbing
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error('repo root (package.json of criu-ts) not found');
}

export const VECTORS = join(repoRoot(), '..', 'shared', 'vectors', 'criu-4.2');
export const CRIT_TS = join(repoRoot(), 'bin', 'crit-ts');

/** Reason to skip when the vectors are absent, else undefined. */
export function vectorsMissing(): string | undefined {
  return existsSync(VECTORS) ? undefined : `test vectors not found at ${VECTORS}`;
}

export interface VectorImage {
  subject: string;
  file: string;
  path: string;
  /** directory of the subject (img/, json-4.2/, ...) */
  base: string;
}

/** Every decodable image of every subject (pages-*.img excluded). */
export function vectorImages(): VectorImage[] {
  if (vectorsMissing() !== undefined) return [];
  const out: VectorImage[] = [];
  for (const subject of readdirSync(VECTORS).sort()) {
    const base = join(VECTORS, subject);
    const img = join(base, 'img');
    if (!existsSync(img)) continue;
    for (const file of readdirSync(img).sort()) {
      if (file.startsWith('pages-')) continue;
      out.push({ subject, file, path: join(img, file), base });
    }
  }
  return out;
}

export function subjects(): string[] {
  return vectorsMissing() !== undefined ? [] : readdirSync(VECTORS).filter((s) => existsSync(join(VECTORS, s, 'img'))).sort();
}
