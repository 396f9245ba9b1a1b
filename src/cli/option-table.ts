/**
 * Every option CRIU's command line accepts (criu/config.c, CRIU 4.x), with
 * its short form, whether it takes an argument, whether CRIU also accepts a
 * "--no-" form, and what criu-ts does with it:
 *  - 'yes': implemented;
 *  - 'ignore': accepted with a warning; leaving it out does not change the
 *    result of what we can dump or restore today;
 *  - 'unsupported': its absence would change the result, so we refuse with
 *    "--X is not supported yet" instead of silently doing something else.
 */

export type ArgKind = 'none' | 'required' | 'optional';
export type Support = 'yes' | 'ignore' | 'unsupported';

export interface OptionSpec {
  long: string;
  short?: string;
  arg: ArgKind;
  /** CRIU's BOOL_OPT: a "--no-<long>" form exists and clears the flag */
  negatable?: boolean;
  support: Support;
}

const Y: Support = 'yes';
const I: Support = 'ignore';
const U: Support = 'unsupported';

export const OPTIONS: readonly OptionSpec[] = [
  // generic
  { long: 'tree', short: 't', arg: 'required', support: Y },
  { long: 'leave-stopped', short: 's', arg: 'none', support: Y },
  { long: 'leave-running', short: 'R', arg: 'none', support: Y },
  { long: 'restore-detached', short: 'd', arg: 'none', negatable: true, support: Y },
  { long: 'restore-sibling', short: 'S', arg: 'none', negatable: true, support: Y },
  // criu-ts only: restore even when files differ from criu-ts-checksums
  { long: 'skip-checksums', arg: 'none', support: Y },
  // criu-ts only: read the restored tree back and compare it with the images before it runs (--verify=warn: only log)
  { long: 'verify', arg: 'optional', support: Y },
  { long: 'daemon', arg: 'none', negatable: true, support: Y },
  { long: 'images-dir', short: 'D', arg: 'required', support: Y },
  { long: 'work-dir', short: 'W', arg: 'required', support: Y },
  { long: 'log-file', short: 'o', arg: 'required', support: Y },
  { long: 'pidfile', arg: 'required', support: Y },
  { long: 'verbosity', short: 'v', arg: 'optional', support: Y },
  { long: 'help', short: 'h', arg: 'none', support: Y },
  { long: 'version', short: 'V', arg: 'none', support: Y },
  { long: 'config', arg: 'required', support: Y },
  { long: 'no-default-config', arg: 'none', support: Y },
  { long: 'close', arg: 'required', support: Y },
  { long: 'display-stats', arg: 'none', negatable: true, support: Y },
  { long: 'timeout', arg: 'required', support: Y },
  { long: 'freeze-cgroup', arg: 'required', support: Y },
  // resources
  { long: 'shell-job', short: 'j', arg: 'none', negatable: true, support: Y },
  { long: 'ext-unix-sk', short: 'x', arg: 'optional', support: Y },
  { long: 'tcp-established', arg: 'none', negatable: true, support: Y },
  { long: 'file-locks', short: 'l', arg: 'none', negatable: true, support: Y },
  { long: 'ghost-limit', arg: 'required', support: Y },
  { long: 'link-remap', arg: 'none', negatable: true, support: Y },
  { long: 'evasive-devices', arg: 'none', negatable: true, support: I },
  { long: 'skip-in-flight', arg: 'none', negatable: true, support: Y },
  { long: 'tcp-close', arg: 'none', negatable: true, support: Y },
  { long: 'force-irmap', arg: 'none', negatable: true, support: I },
  { long: 'irmap-scan-path', arg: 'required', support: I },
  { long: 'weak-sysctls', arg: 'none', negatable: true, support: I },
  { long: 'file-validation', arg: 'required', support: I },
  { long: 'ghost-fiemap', arg: 'none', negatable: true, support: I },
  { long: 'skip-file-rwx-check', arg: 'none', negatable: true, support: I },
  { long: 'allow-uprobes', arg: 'none', negatable: true, support: I },
  { long: 'external', arg: 'required', support: Y },
  { long: 'inherit-fd', arg: 'required', support: Y },
  { long: 'empty-ns', arg: 'required', support: Y },
  { long: 'join-ns', short: 'J', arg: 'required', support: Y },
  { long: 'root', short: 'r', arg: 'required', support: Y },
  { long: 'veth-pair', arg: 'required', support: Y },
  { long: 'ext-mount-map', short: 'M', arg: 'required', support: Y },
  { long: 'action-script', arg: 'required', support: Y },
  { long: 'exec-cmd', arg: 'none', support: Y },
  { long: 'check-only', arg: 'none', negatable: true, support: U },
  // cgroups (docs/cgroups.md); CRIU's property lists are built in
  { long: 'manage-cgroups', arg: 'optional', support: Y },
  { long: 'cgroup-root', arg: 'required', support: Y },
  { long: 'cgroup-props', arg: 'required', support: I },
  { long: 'cgroup-props-file', arg: 'required', support: I },
  { long: 'cgroup-dump-controller', arg: 'required', support: Y },
  { long: 'cgroup-yard', arg: 'required', support: Y },
  // mounts (docs/namespaces.md), LSM (not restored: ignored), network locking
  { long: 'skip-mnt', arg: 'required', support: I },
  { long: 'enable-fs', arg: 'required', support: I },
  { long: 'enable-external-sharing', arg: 'none', support: Y },
  { long: 'enable-external-masters', arg: 'none', support: Y },
  { long: 'mntns-compat-mode', arg: 'none', negatable: true, support: I },
  { long: 'lsm-profile', arg: 'required', support: I },
  { long: 'lsm-mount-context', arg: 'required', support: I },
  { long: 'network-lock', arg: 'required', support: Y },
  { long: 'unprivileged', arg: 'none', negatable: true, support: I },
  // memory
  { long: 'track-mem', arg: 'none', negatable: true, support: Y },
  { long: 'prev-images-dir', arg: 'required', support: Y },
  { long: 'pre-dump-mode', arg: 'required', support: Y },
  { long: 'auto-dedup', arg: 'none', negatable: true, support: Y },
  { long: 'page-server', arg: 'none', negatable: true, support: Y },
  { long: 'lazy-pages', arg: 'none', support: Y },
  { long: 'stream', arg: 'none', negatable: true, support: U },
  { long: 'remote', arg: 'none', negatable: true, support: U },
  { long: 'ps-socket', arg: 'required', support: U },
  // page server / service connection (only meaningful for commands we refuse anyway)
  { long: 'address', arg: 'required', support: Y },
  // criu-ts only: who may connect to the service socket (default 0600: root only)
  { long: 'socket-mode', arg: 'required', support: Y },
  { long: 'socket-group', arg: 'required', support: Y },
  { long: 'port', arg: 'required', support: Y },
  { long: 'status-fd', arg: 'required', support: Y },
  { long: 'tls', arg: 'none', negatable: true, support: U },
  { long: 'tls-cacert', arg: 'required', support: I },
  { long: 'tls-cacrl', arg: 'required', support: I },
  { long: 'tls-cert', arg: 'required', support: I },
  { long: 'tls-key', arg: 'required', support: I },
  { long: 'tls-no-cn-verify', arg: 'none', support: I },
  // misc
  { long: 'libdir', short: 'L', arg: 'required', support: I },
  { long: 'cpu-cap', arg: 'optional', support: Y },
  { long: 'log-pid', arg: 'none', negatable: true, support: I },
  { long: 'deprecated', arg: 'none', negatable: true, support: I },
  { long: 'ms', arg: 'none', support: U },
  // check
  { long: 'feature', arg: 'required', support: Y },
  { long: 'extra', arg: 'none', negatable: true, support: Y },
  { long: 'experimental', arg: 'none', negatable: true, support: Y },
  { long: 'all', arg: 'none', support: Y },
];

/** One long name as the parser sees it: "--no-X" forms are entries of their own, like getopt's table. */
export interface LongName {
  name: string;
  spec: OptionSpec;
  negated: boolean;
}

export const LONG_NAMES: readonly LongName[] = OPTIONS.flatMap((spec) => {
  const names: LongName[] = [{ name: spec.long, spec, negated: false }];
  if (spec.negatable === true) names.push({ name: `no-${spec.long}`, spec, negated: true });
  return names;
});

export const SHORT_OPTIONS: ReadonlyMap<string, OptionSpec> = new Map(
  OPTIONS.filter((o) => o.short !== undefined).map((o) => [o.short ?? '', o]),
);

export const COMMANDS = [
  'dump', 'pre-dump', 'restore', 'check', 'page-server', 'service', 'swrk', 'lazy-pages', 'cpuinfo', 'dedup',
] as const;
export type CommandName = (typeof COMMANDS)[number];

export function isCommandName(s: string): s is CommandName {
  return (COMMANDS as readonly string[]).includes(s);
}
