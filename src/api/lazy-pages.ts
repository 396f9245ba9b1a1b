/**
 * `criu-ts lazy-pages`: serve the pages of one lazy restore
 * (`restore --lazy-pages`) from the images in `imagesDir`
 * (src/restore/lazy-pages.ts). Returns once every page is in place.
 */
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { serveLazyPages, type LazyPagesStats } from '../restore/lazy-pages.js';

export interface LazyPagesOptions {
  imagesDir?: string;
  /** where the socket goes (default: the images dir, as CRIU's work dir) */
  workDir?: string;
  /** called once the daemon listens */
  onListening?: () => void;
  /** --page-server --address --port: pages from a page server running `page-server --lazy-pages` on the images */
  pageServer?: { address: string; port: number };
  /** serve pages without checking them against the dump's criu-ts-checksums (`--skip-checksums`) */
  skipChecksums?: boolean;
}

export async function lazyPages(opts: LazyPagesOptions): Promise<LazyPagesStats> {
  const dir = resolve(opts.imagesDir ?? '.');
  if (!existsSync(dir)) throw new CriuTsError('EUSAGE', `images directory ${dir} does not exist`, { dir });
  return serveLazyPages({
    dir, workDir: resolve(opts.workDir ?? dir),
    ...(opts.onListening ? { onListening: opts.onListening } : {}),
    ...(opts.pageServer ? { pageServer: opts.pageServer } : {}),
    ...(opts.skipChecksums ? { skipChecksums: true } : {}),
  });
}
