import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readSysctl, readSysctlInt } from '../../src/proc/index.js';

test('sysctls: text without its newline, integers, one this kernel lacks', () => {
  assert.equal(readSysctl('kernel/ostype'), 'Linux');
  assert.equal(readSysctl('kernel/hostname'), readFileSync('/proc/sys/kernel/hostname', 'utf8').trim());
  const last = readSysctlInt('kernel/cap_last_cap');
  assert.ok(last !== undefined && last >= 40, String(last));
  assert.equal(readSysctlInt('kernel/ostype'), undefined, 'not an integer');
  assert.equal(readSysctl('kernel/no_such_sysctl'), undefined);
  assert.equal(readSysctlInt('kernel/no_such_sysctl'), undefined);
});
