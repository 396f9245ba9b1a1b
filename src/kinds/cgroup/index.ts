/**
 * Cgroups (v1 hierarchies, named ones, v2, hybrid) and the cgroup
 * namespace: CRIU's cgroup.img (sets of memberships, directories with
 * properties and permissions), each thread's thread_core.cg_set, and
 * inventory.root_cg_set (the dumper's own set, left out of the image).
 * --manage-cgroups (none, props, soft, full, strict, ignore; soft by
 * default), --cgroup-root, --cgroup-yard and --cgroup-dump-controller as
 * CRIU takes them.
 *
 * Limits: one cgroup namespace for the whole tree (the root's; nesting is
 * refused); a cgroup equal to the dumper's own is saved without its
 * subtree; freezer.state is not saved; --cgroup-props and
 * --cgroup-props-file are not taken (CRIU's built-in property
 * lists are used). See docs/cgroups.md.
 */
import type { ResourceKind } from '../resource-kind.js';
import { dumpCgroupTask, dumpCgroupTree } from './dump.js';
import { finishCgroups, prepareCgroups, restoreTaskCgroups } from './restore.js';

export const cgroupKind: ResourceKind = {
  name: 'cgroup',
  namespaces: ['cgroup'],
  dumpTree: dumpCgroupTree,
  dumpTask: dumpCgroupTask,
  prepareRestore: prepareCgroups,
  restoreCreated: restoreTaskCgroups,
  finishRestore: finishCgroups,
};
