/**
 * The cgroup options (--manage-cgroups, --cgroup-root, --cgroup-yard) of
 * the public API resolved once, with CRIU's defaults, for dump and restore.
 */
import { isAbsolute, resolve } from 'node:path';
import type { CgroupMode, CgroupOptions } from '../kinds/index.js';
import { CriuTsError } from '../errors.js';

export const CGROUP_MODES: readonly CgroupMode[] = ['ignore', 'none', 'props', 'soft', 'full', 'strict'];

/** "[controller:]/newroot" as CRIU takes it (the controller is "cpu", "name=systemd", ...). */
export function parseCgroupRoot(spec: string): { controller: string | undefined; root: string } {
  const colon = spec.indexOf(':');
  const controller = colon < 0 ? undefined : spec.slice(0, colon);
  const root = colon < 0 ? spec : spec.slice(colon + 1);
  if (!isAbsolute(root) || controller === '') {
    throw new CriuTsError('EUSAGE', `--cgroup-root ${spec}: expected [controller:]/path`, { spec });
  }
  return { controller, root };
}

/** Resolved with CRIU's default (soft); a relative --cgroup-yard is taken in the work dir, where CRIU runs. */
export function cgroupOptions(o: {
  manageCgroups?: CgroupMode; cgroupRoot?: readonly string[]; cgroupYard?: string; cgroupDumpController?: readonly string[]; imagesDir?: string; workDir?: string;
}): CgroupOptions {
  const mode = o.manageCgroups ?? 'soft';
  if (!CGROUP_MODES.includes(mode)) throw new CriuTsError('EUSAGE', `--manage-cgroups ${String(mode)}: expected one of ${CGROUP_MODES.join(', ')}`, { mode });
  return {
    manageCgroups: mode,
    cgroupRoots: (o.cgroupRoot ?? []).map(parseCgroupRoot),
    cgroupYard: o.cgroupYard === undefined ? undefined : resolve(o.workDir ?? o.imagesDir ?? '.', o.cgroupYard),
    cgroupDumpControllers: [...(o.cgroupDumpController ?? [])],
  };
}
