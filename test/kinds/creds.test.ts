/**
 * Capabilities are only ever lowered at restore: an image whose thread had
 * a capability criu-ts does not hold (here one missing from our own
 * bounding set, e.g. CAP_SYS_RESOURCE in this sandbox) is refused with one
 * line naming the task, the set and the capability, and nothing is left
 * behind. The creds-caps subject (test/subjects) shows the five sets,
 * securebits and no_new_privs coming back when they can.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump, restore } from '../../src/api/index.js';
import { readImage, writeImage } from '../../src/images/index.js';
import type { CoreEntry } from '../../src/images/messages.js';
import { isCriuTsError } from '../../src/errors.js';
import { isAlive, startSubject } from '../lib/subjects.js';
import type { Subject } from '../lib/subjects.js';
import { becomeSubreaper, closeInheritedFds, killAndWait, removeDir, tempDir, waitTreeGone } from '../e2e/helpers.js';

before(() => {
  closeInheritedFds();
  becomeSubreaper();
});

/** A capability number criu-ts itself lacks: one cut from our bounding set, else one past cap_last_cap. */
function capWeLack(): number {
  const bnd = BigInt('0x' + (/CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'));
  const last = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  for (let c = 0; c <= last; c++) if (((bnd >> BigInt(c)) & 1n) === 0n) return c;
  return last + 1;
}

test('an image holding a capability criu-ts lacks is refused at restore, naming it; nothing is left', { timeout: 60_000 }, async () => {
  let s: Subject | undefined;
  const dir = tempDir('creds-raise');
  try {
    s = await startSubject('counter-loop');
    await dump({ pid: s.pid, imagesDir: dir, progress: false });
    assert.deepEqual(await waitTreeGone(dir), []);
    const cap = capWeLack();
    const file = readdirSync(dir).find((f) => f === `core-${s?.pid}.img`) as string;
    const img = readImage(join(dir, file));
    const core = img.entries[0] as unknown as CoreEntry;
    const creds = core.thread_core?.creds;
    assert.ok(creds, 'creds in the core image');
    const word = cap >> 5;
    const bit = 1 << (cap & 31);
    for (const set of ['cap_prm', 'cap_bnd'] as const) {
      const w = [...(creds[set] ?? [0, 0])];
      w[word] = ((w[word] ?? 0) | bit) >>> 0;
      creds[set] = w;
    }
    writeImage(join(dir, file), 'CORE', img.entries);
    // The image is edited on purpose: past the checksums, to the capability check itself.
    await assert.rejects(restore({ imagesDir: dir, progress: false, skipChecksums: true }), (e: unknown) => {
      assert.ok(isCriuTsError(e), String(e));
      assert.equal(e.code, 'EUNSUPPORTED');
      assert.match(e.message, new RegExp(`task ${s?.pid} thread ${s?.pid}: the image's (permitted|bounding) capability set holds capabilities ${cap}\\b`));
      return true;
    });
    assert.ok(!isAlive(s.pid), 'the refused restore left no task behind');
  } finally {
    if (s) {
      await killAndWait(s.pid);
      s.cleanup();
    }
    removeDir(dir);
  }
});
