/**
 * Versions, said once: the CRIU release whose command line, images and RPC
 * criu-ts follows (what `criu -V` and the RPC VERSION request answer), and
 * criu-ts's own version from package.json.
 */
import { readFileSync } from 'node:fs';

/** The CRIU release criu-ts follows. */
export const CRIU_COMPAT_VERSION = { major: 4, minor: 0 } as const;

/** "4.0" */
export const CRIU_COMPAT_VERSION_TEXT = `${CRIU_COMPAT_VERSION.major}.${CRIU_COMPAT_VERSION.minor}`;

/** criu-ts's own version, from package.json (found from dist/src, src or dist/bundle). */
export function version(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'criu-ts' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}
