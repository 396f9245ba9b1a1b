/**
 * AppArmor namespaces and policies: CRIU images/apparmor.proto, image
 * apparmor.img.
 */
import { defineMessage, f } from './types.js';

defineMessage('aa_policy', [
  f(1, 'name', 'required', 'string'),
  f(2, 'blob', 'required', 'bytes'),
]);

defineMessage('aa_namespace', [
  f(1, 'name', 'required', 'string'),
  f(2, 'policies', 'repeated', 'message', { ref: 'aa_policy' }),
  f(3, 'namespaces', 'repeated', 'message', { ref: 'aa_namespace' }),
]);

defineMessage('apparmor_entry', [
  f(1, 'namespaces', 'repeated', 'message', { ref: 'aa_namespace' }),
]);
