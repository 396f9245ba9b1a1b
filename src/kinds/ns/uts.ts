/**
 * The UTS namespace (kernel: struct uts_namespace): the host name and the
 * NIS domain name. CRIU image utsns-<ns id>.img (utsns_entry).
 *
 * Dump: when the tree's root is in a uts namespace other than criu-ts's,
 * both names are read inside it (/proc/sys/kernel/{hostname,domainname},
 * by our thread stepped into it with setns). Restore: the root task, right
 * after its clone3 and before its children, runs an injected
 * unshare(CLONE_NEWUTS), sethostname and setdomainname; its children are
 * born in it. With --join-ns uts the root enters the given namespace
 * instead (join.ts), and the dumped names are set there. Limits: a task in yet another uts namespace inside the tree
 * (nested) is refused; the other uname fields are the kernel's.
 */
import { readSysctl } from '../../proc/index.js';
import { CriuTsError } from '../../errors.js';
import { imageFile } from '../../images/index.js';
import { NR, CLONE_NEWUTS, inNamespacesOf } from '../../sys/index.js';
import type { UtsnsEntry } from '../../images/messages.js';
import { stateKey, type RestoreTaskHandle } from '../types.js';
import type { ResourceKind } from '../resource-kind.js';
import { isRoot, rootNamespaceDump, rootNamespaceToCreate } from './common.js';
import { closeJoinFd, joinInTask, openJoinNs } from './join.js';

const RESTORE = stateKey<{ rootPid: number; entry: UtsnsEntry | undefined; joinFd?: number | undefined }>('uts:restore');

/** A name as the kernel holds it (the sysctl file ends with a newline). */
function readName(file: string): string {
  const name = readSysctl(`kernel/${file}`);
  if (name === undefined) throw new CriuTsError('EDUMP', `cannot read kernel.${file}`, { file });
  return name;
}

function setName(t: RestoreTaskHandle, what: 'sethostname' | 'setdomainname', name: string): void {
  const bytes = Buffer.from(name, 'utf8');
  t.syscall(what, what === 'sethostname' ? NR.sethostname : NR.setdomainname, t.putBytes(bytes), bytes.length);
}

export const utsKind: ResourceKind = {
  name: 'uts',
  namespaces: ['uts'], joins: ['uts'],

  ...rootNamespaceDump('uts', (task, id, ctx) => {
    const entry: UtsnsEntry = inNamespacesOf(task.pid, ['uts'], () => ({
      nodename: readName('hostname'),
      domainname: readName('domainname'),
    }));
    ctx.saveImage('UTSNS', id, [entry]);
  }),

  prepareRestore(tree, ctx) {
    const id = rootNamespaceToCreate(tree, 'uts');
    let entry: UtsnsEntry | undefined;
    if (id !== undefined) {
      const file = imageFile('UTSNS', id);
      entry = ctx.image('UTSNS', id)?.entries[0];
      if (entry === undefined) throw new CriuTsError('EIMAGE', `${file} is missing or empty: the tree's uts namespace cannot be re-created`, { file });
    }
    ctx.state(RESTORE, () => ({ rootPid: tree.rootPid, entry, joinFd: openJoinNs(ctx, 'uts') }));
  },

  restoreCreated(t, task, ctx) {
    const st = ctx.state(RESTORE, () => ({ rootPid: 0, entry: undefined }));
    if (!isRoot(task, st.rootPid)) return;
    // --join-ns uts: into the given namespace, which gets the dumped names as a new one would (CRIU does the same).
    if (st.joinFd !== undefined) joinInTask(t, ctx, 'uts', st.joinFd);
    if (st.entry === undefined) return;
    if (st.joinFd === undefined) t.syscall('unshare(CLONE_NEWUTS)', NR.unshare, CLONE_NEWUTS);
    setName(t, 'sethostname', st.entry.nodename);
    setName(t, 'setdomainname', st.entry.domainname);
  },

  finishRestore(ctx) {
    closeJoinFd(ctx.state(RESTORE, () => ({ rootPid: 0, entry: undefined })));
  },
};
