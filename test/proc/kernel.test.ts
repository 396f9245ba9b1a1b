import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFilesystems, readKernelConfig } from '../../src/proc/index.js';

test('the kernel config: CONFIG_ names with their values, or nothing where the kernel exposes none', () => {
  const config = readKernelConfig();
  if (!existsSync('/proc/config.gz')) {
    assert.equal(config.size, 0);
    return;
  }
  assert.ok(config.size > 100, `${config.size} entries`);
  assert.equal(config.get('CONFIG_CHECKPOINT_RESTORE'), 'y');
  for (const [k, v] of config) {
    assert.match(k, /^CONFIG_\w+$/);
    assert.notEqual(v, '');
  }
});

test('the filesystem types: the nodev mark left out, one name a line', () => {
  const fs = readFilesystems();
  assert.ok(fs.includes('proc') && fs.includes('tmpfs'), fs.join(' '));
  assert.equal(fs.length, readFileSync('/proc/filesystems', 'utf8').trim().split('\n').length);
  for (const n of fs) assert.match(n, /^[\w.-]+$/);
});
