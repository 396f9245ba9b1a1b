/**
 * Dump a running subject into a fresh images dir, restore it, and return
 * what the subject says after SIGTERM; shared by the pipe, FIFO and unix
 * socket kind tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../../src/api/dump.js';
import { restore } from '../../../src/api/restore.js';
import { startSubject, type SubjectResult } from '../../lib/subjects.js';

export interface Roundtrip {
  result: SubjectResult;
  imagesDir: string;
  cleanup(): void;
}

export async function roundtrip(name: string, args: string[] = [], keepImages = false): Promise<Roundtrip> {
  const imagesDir = mkdtempSync(join(tmpdir(), `criu-ts-${name}-`));
  const s = await startSubject(name, args);
  try {
    await dump({ pid: s.pid, imagesDir, progress: false });
    await restore({ imagesDir, progress: false });
    const result = await s.terminateAndResult(10_000);
    const cleanup = (): void => {
      s.cleanup();
      rmSync(imagesDir, { recursive: true, force: true });
    };
    if (!keepImages) cleanup();
    return { result, imagesDir, cleanup };
  } catch (e) {
    s.kill();
    s.cleanup();
    rmSync(imagesDir, { recursive: true, force: true });
    throw e;
  }
}
