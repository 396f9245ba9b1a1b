/**
 * `--join-ns NS:FILE|PID[,EXTRA]` (CRIU's restore option; RPC join_ns):
 * the restored tree goes into an existing namespace instead of a new one.
 * FILE is a namespace file (a bind mount such as /run/netns/NAME, or a
 * /proc/PID/ns/NS link); a number is a pid, whose NS namespace is taken.
 *
 * As CRIU does, the root task enters the namespace right after its clone3
 * (setns), before its children exist, so the whole tree lives there; what
 * the dump saved of the tree's own namespace of that type (a net
 * namespace's devices, addresses, routes and firewall; a host name; SysV
 * objects) is then put into the joined one, as it would be into a new one.
 * A tree dumped in criu-ts's own namespace of that type just joins.
 *
 * Handled: net, uts, ipc (the kinds that list the type in `joins`; the
 * requests are checked by the API, api/join-ns.ts). pid (CRIU refuses it
 * too), mnt, user, time and cgroup are refused with one line, as is a file
 * that is not a namespace of the type named.
 */
import { closeSync, openSync } from 'node:fs';
import { CriuTsError } from '../../errors.js';
import { NR, NSTYPE, namespaceTypeOf, type ThreadNsType } from '../../sys/index.js';
import type { JoinNs, RestoreContext, RestoreTaskHandle } from '../types.js';

export type JoinableNs = JoinNs['type'] & ThreadNsType;

/** "a net", "an ipc" */
const a = (type: string): string => `${type === 'ipc' ? 'an' : 'a'} ${type}`;


/**
 * Open the namespace to join for `type`, when one is given: our own fd
 * (close-on-exec), checked to be a namespace of that type. The caller
 * closes it (finishRestore).
 */
export function openJoinNs(ctx: RestoreContext, type: JoinableNs): number | undefined {
  const j = ctx.opts.joinNs.find((x) => x.type === type);
  if (j === undefined) return undefined;
  let fd: number;
  try {
    fd = openSync(j.file, 'r');
  } catch (e) {
    throw new CriuTsError('ERESTORE', `--join-ns ${type}:${j.file}: cannot open it: ${(e as Error).message}`, { ns: type, file: j.file }, e);
  }
  const got = namespaceTypeOf(fd);
  if (got !== NSTYPE[type]) {
    closeSync(fd);
    const other = Object.entries(NSTYPE).find(([, v]) => v === got)?.[0];
    const what = got === undefined ? 'not a namespace file' : other !== undefined ? `${a(other)} namespace` : `namespace type 0x${got.toString(16)}`;
    throw new CriuTsError('EUSAGE', `--join-ns ${type}:${j.file}: not ${a(type)} namespace (${what})`, { ns: type, file: j.file });
  }
  return fd;
}

/** In the new root task: enter the namespace behind our fd `ours` (installed in the task, setns, closed). */
export function joinInTask(t: RestoreTaskHandle, ctx: RestoreContext, type: JoinableNs, ours: number): void {
  if (!ctx.installFd) throw new CriuTsError('EINTERNAL', `no way to hand the ${type} namespace to task ${t.pid}`, { pid: t.pid });
  const fd = ctx.installFd(t, ours);
  try {
    t.syscall(`setns(${type})`, NR.setns, fd, NSTYPE[type]);
  } finally {
    t.syscall('close', NR.close, fd);
  }
}

/** Close our fd of a joined namespace (finishRestore), once. */
export function closeJoinFd(st: { joinFd?: number | undefined }): void {
  if (st.joinFd === undefined) return;
  try {
    closeSync(st.joinFd);
  } catch {
    // closed already
  }
  st.joinFd = undefined;
}
