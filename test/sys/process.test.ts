import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { xcompSupported } from '../../src/sys/index.js';

// The dump leaves out ARCH_GET_XCOMP_PERM where no dynamic feature (AMX tile data, bit 18) is supported.
test('xcompSupported: the user XSAVE features, AMX tile data exactly where the CPU has it', () => {
  const supp = xcompSupported();
  assert.equal(xcompSupported(), supp, 'asked once, the same answer');
  const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
  // x87 and SSE state are always there (Linux 5.16 and later answer the call).
  assert.equal(supp & 3n, 3n);
  assert.equal((supp >> 18n) & 1n, flags.includes('amx_tile') ? 1n : 0n);
});
