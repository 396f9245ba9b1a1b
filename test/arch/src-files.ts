/** The sources the architecture tests read: src/ of this checkout, every .ts file in it. */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** the repository (compiled to dist/test/arch: three levels up) */
export const ROOT = normalize(join(here, '..', '..', '..'));
export const SRC = join(ROOT, 'src');

/** Every .ts file under `dir` (default src/), sorted, as absolute paths. */
export function tsFiles(dir: string = SRC, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}
