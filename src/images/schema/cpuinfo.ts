/**
 * CPU capabilities for cpuinfo dump/check: CRIU images/cpuinfo.proto, image
 * cpuinfo.img (magic 0x61404013). Nested enums are registered under
 * "<message>.<enum>", protobuf's own full name.
 */
import { defineEnum, defineMessage, f } from './types.js';

defineMessage('cpuinfo_x86_entry', [
  f(1, 'vendor_id', 'required', 'enum', { ref: 'cpuinfo_x86_entry.vendor' }),
  f(2, 'cpu_family', 'required', 'uint32'),
  f(3, 'model', 'required', 'uint32'),
  f(4, 'stepping', 'required', 'uint32'),
  f(5, 'capability_ver', 'required', 'uint32'),
  f(6, 'capability', 'repeated', 'uint32'),
  f(7, 'model_id', 'optional', 'string'),
  f(8, 'xfeatures_mask', 'optional', 'uint64'),
  f(9, 'xsave_size', 'optional', 'uint32'),
  f(10, 'xsave_size_max', 'optional', 'uint32'),
]);

defineEnum('cpuinfo_x86_entry.vendor', { UNKNOWN: 0, INTEL: 1, AMD: 2 });

defineMessage('cpuinfo_ppc64_entry', [
  f(1, 'endian', 'required', 'enum', { ref: 'cpuinfo_ppc64_entry.endianness' }),
  f(2, 'hwcap', 'repeated', 'uint64'),
]);

defineEnum('cpuinfo_ppc64_entry.endianness', { BIGENDIAN: 0, LITTLEENDIAN: 1 });

defineMessage('cpuinfo_s390_entry', [
  f(2, 'hwcap', 'repeated', 'uint64'),
]);

defineMessage('cpuinfo_entry', [
  f(1, 'x86_entry', 'repeated', 'message', { ref: 'cpuinfo_x86_entry' }),
  f(2, 'ppc64_entry', 'repeated', 'message', { ref: 'cpuinfo_ppc64_entry' }),
  f(3, 's390_entry', 'repeated', 'message', { ref: 'cpuinfo_s390_entry' }),
]);
