/**
 * Credentials (CRIU images/creds.proto): thread_core.creds and the old CREDS image.
 * Field numbers, types and (criu) options as in CRIU 4.2; see ./types.ts.
 */
import { defineMessage, f } from './types.js';

defineMessage('creds_entry', [
  f(1, 'uid', 'required', 'uint32'),
  f(2, 'gid', 'required', 'uint32'),
  f(3, 'euid', 'required', 'uint32'),
  f(4, 'egid', 'required', 'uint32'),
  f(5, 'suid', 'required', 'uint32'),
  f(6, 'sgid', 'required', 'uint32'),
  f(7, 'fsuid', 'required', 'uint32'),
  f(8, 'fsgid', 'required', 'uint32'),
  f(9, 'cap_inh', 'repeated', 'uint32'),
  f(10, 'cap_prm', 'repeated', 'uint32'),
  f(11, 'cap_eff', 'repeated', 'uint32'),
  f(12, 'cap_bnd', 'repeated', 'uint32'),
  f(13, 'secbits', 'required', 'uint32'),
  f(14, 'groups', 'repeated', 'uint32'),
  f(15, 'lsm_profile', 'optional', 'string'),
  f(16, 'lsm_sockcreate', 'optional', 'string'),
  f(17, 'apparmor_data', 'optional', 'bytes'),
  f(18, 'no_new_privs', 'optional', 'uint32'),
  f(19, 'cap_amb', 'repeated', 'uint32'),
]);
