/**
 * One sysctl value: CRIU images/sysctl.proto, embedded in netns_entry,
 * net_device_entry and ipc namespaces.
 */
import { defineEnum, defineMessage, f } from './types.js';

defineEnum('SysctlType', { CTL_STR: 5, CTL_32: 6 });

defineMessage('sysctl_entry', [
  f(1, 'type', 'required', 'enum', { ref: 'SysctlType' }),
  f(2, 'iarg', 'optional', 'int32'),
  f(3, 'sarg', 'optional', 'string'),
]);
