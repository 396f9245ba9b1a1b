/**
 * Images our pipe, FIFO and unix socket kinds write decode the same with
 * Debian's crit 3.17 and with bin/crit-ts (`decode --pretty`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../../src/api/dump.js';
import { repoRoot, startSubject } from '../../lib/subjects.js';

const CRIT = '/usr/bin/crit';
const skip = existsSync(CRIT) ? undefined : 'Debian crit 3.17 not installed (apt-get install -y criu)';

function decode(cmd: string[], file: string): string {
  const r = spawnSync(cmd[0] as string, [...cmd.slice(1), 'decode', '-i', file, '--pretty'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `${cmd.join(' ')} decode ${file}: ${r.stderr}`);
  return r.stdout;
}

for (const name of ['pipe-data', 'fifo', 'unix-pair', 'unix-bound']) {
  test(`${name}: crit 3.17 and crit-ts decode files, pipes-data, fifo-data, sk-queues alike`, { skip }, async () => {
    const dir = mkdtempSync(join(tmpdir(), `criu-ts-oracle-${name}-`));
    const s = await startSubject(name, []);
    try {
      await dump({ pid: s.pid, imagesDir: dir, progress: false });
      let compared = 0;
      for (const img of ['files.img', 'pipes-data.img', 'fifo-data.img', 'sk-queues.img']) {
        const file = join(dir, img);
        if (!existsSync(file)) continue;
        const theirs = decode([CRIT], file);
        const ours = decode([process.execPath, join(repoRoot(), 'bin', 'crit-ts')], file);
        assert.deepEqual(JSON.parse(ours), JSON.parse(theirs), `${img} of ${name}`);
        compared++;
      }
      assert.ok(compared >= 2, 'files.img and a data image were written');
    } finally {
      s.kill();
      s.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
