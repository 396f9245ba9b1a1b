/**
 * Registers of the architectures CRIU 4.2 added after core.ts was written
 * (CRIU images/core-aarch64.proto PAC keys, core-loongarch64.proto,
 * core-riscv64.proto). criu-ts runs on x86_64 only; these are here so that
 * crit-ts reads and re-encodes such images field for field.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('pac_address_keys', [
  f(1, 'apiakey_lo', 'required', 'uint64'),
  f(2, 'apiakey_hi', 'required', 'uint64'),
  f(3, 'apibkey_lo', 'required', 'uint64'),
  f(4, 'apibkey_hi', 'required', 'uint64'),
  f(5, 'apdakey_lo', 'required', 'uint64'),
  f(6, 'apdakey_hi', 'required', 'uint64'),
  f(7, 'apdbkey_lo', 'required', 'uint64'),
  f(8, 'apdbkey_hi', 'required', 'uint64'),
  f(9, 'pac_enabled_key', 'required', 'uint64'),
]);
defineMessage('pac_generic_keys', [
  f(1, 'apgakey_lo', 'required', 'uint64'),
  f(2, 'apgakey_hi', 'required', 'uint64'),
]);
defineMessage('pac_keys', [
  f(6, 'pac_address_keys', 'optional', 'message', { ref: 'pac_address_keys' }),
  f(7, 'pac_generic_keys', 'optional', 'message', { ref: 'pac_generic_keys' }),
]);

defineMessage('user_loongarch64_gpregs_entry', [
  f(1, 'regs', 'repeated', 'uint64'),
  f(2, 'pc', 'required', 'uint64'),
]);
defineMessage('user_loongarch64_fpregs_entry', [
  f(1, 'regs', 'repeated', 'uint64'),
  f(2, 'fcc', 'required', 'uint64'),
  f(3, 'fcsr', 'required', 'uint32'),
]);
defineMessage('thread_info_loongarch64', [
  f(1, 'clear_tid_addr', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'tls', 'required', 'uint64'),
  f(3, 'gpregs', 'required', 'message', { ref: 'user_loongarch64_gpregs_entry', opts: { hex: true } }),
  f(4, 'fpregs', 'required', 'message', { ref: 'user_loongarch64_fpregs_entry', opts: { hex: true } }),
]);

const RISCV64_GPRS = [
  'pc', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7',
  's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6',
];
defineMessage('user_riscv64_regs_entry', RISCV64_GPRS.map((name, i) => f(i + 1, name, 'required', 'uint64')));
defineMessage('user_riscv64_d_ext_entry', [
  f(1, 'f', 'repeated', 'uint64'),
  f(2, 'fcsr', 'required', 'uint32'),
]);
defineMessage('thread_info_riscv64', [
  f(1, 'clear_tid_addr', 'required', 'uint64', { opts: { hex: true } }),
  f(2, 'tls', 'required', 'uint64'),
  f(3, 'gpregs', 'required', 'message', { ref: 'user_riscv64_regs_entry', opts: { hex: true } }),
  f(4, 'fpsimd', 'required', 'message', { ref: 'user_riscv64_d_ext_entry' }),
]);
