/**
 * User namespace uid/gid maps: CRIU images/userns.proto, image
 * userns-<id>.img (magic 0x55474906).
 */
import { defineMessage, f } from './types.js';

defineMessage('uid_gid_extent', [
  f(1, 'first', 'required', 'uint32'),
  f(2, 'lower_first', 'required', 'uint32'),
  f(3, 'count', 'required', 'uint32'),
]);

defineMessage('userns_entry', [
  f(1, 'uid_map', 'repeated', 'message', { ref: 'uid_gid_extent' }),
  f(2, 'gid_map', 'repeated', 'message', { ref: 'uid_gid_extent' }),
  // criu-ts's own field, not in CRIU (which neither saves nor restores
  // /proc/PID/setgroups): true when setgroups() is denied in the namespace,
  // written only then. CRIU and crit skip it as an unknown field.
  f(1000, 'setgroups_deny', 'optional', 'bool'),
]);
