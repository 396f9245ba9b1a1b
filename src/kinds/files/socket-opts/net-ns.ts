/**
 * sock_diag answers for the caller's net namespace only, and a dump may
 * meet sockets of several (the tree's own, a nested one, files in flight
 * sent from another): each socket kind lists a namespace once per dump,
 * from inside it, keyed by the namespace.
 */
import { readlinkSync } from 'node:fs';
import { inNetNamespaceOfSocket } from '../../../sys/index.js';
import type { DumpContext, StateKey } from '../../types.js';

/**
 * The listing `list` makes in the net namespace socket `sockFd` belongs
 * to, made there once per dump (the tasks are frozen: one listing serves
 * every socket of the namespace).
 */
export function listingFor<T>(ctx: DumpContext, key: StateKey<Map<string, T>>, sockFd: number, list: () => T): T {
  const byNs = ctx.memo(key, () => new Map<string, T>());
  return inNetNamespaceOfSocket(sockFd, () => {
    const ns = readlinkSync('/proc/thread-self/ns/net');
    let t = byNs.get(ns);
    if (t === undefined) {
      t = list();
      byNs.set(ns, t);
    }
    return t;
  });
}
