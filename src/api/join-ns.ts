/**
 * `--join-ns NS:FILE|PID[,EXTRA]` (CRIU's restore option; RPC join_ns) as
 * given, checked into the restore's option: the types the kinds can join
 * (ResourceKind.joins; kinds/ns/join.ts says how a tree joins one).
 */
import { statSync } from 'node:fs';
import { CriuTsError } from '../errors.js';
import { joinableNamespaces, type JoinNs, type JoinNsRequest } from '../kinds/index.js';
import { KNOWN } from './join-ns-arg.js';

/** "a net", "an ipc" */
const a = (type: string): string => `${type === 'ipc' ? 'an' : 'a'} ${type}`;


/** The types some kind joins, as a message lists them ("net, uts, ipc"). */
function joinableList(): string {
  const joinable: ReadonlySet<string> = joinableNamespaces();
  return KNOWN.filter((t) => joinable.has(t)).join(', ');
}

/**
 * Check the requests before anything is restored: a known, handled type
 * (given twice: the last one), and a file that exists (a pid that exists). The type of the
 * namespace behind the file is checked when it is opened.
 */
export function checkJoinNs(reqs: readonly JoinNsRequest[]): JoinNs[] {
  const joinable: ReadonlySet<string> = joinableNamespaces();
  const handled = joinableList();
  const out: JoinNs[] = [];
  for (const r of reqs) {
    const shown = `--join-ns ${r.ns}:${r.file}`;
    if (!KNOWN.includes(r.ns)) throw new CriuTsError('EUSAGE', `${shown}: invalid namespace type ${JSON.stringify(r.ns)} (${handled})`, { ns: r.ns });
    if (!joinable.has(r.ns)) {
      throw new CriuTsError('EUNSUPPORTED', `${shown}: joining ${a(r.ns)} namespace is not supported (${handled})`, { ns: r.ns });
    }
    if (r.extra !== undefined && r.extra !== '') {
      throw new CriuTsError('EUSAGE', `${shown},${r.extra}: only a user namespace takes extra options`, { ns: r.ns });
    }
    const file = /^\d+$/.test(r.file) ? `/proc/${Number(r.file)}/ns/${r.ns}` : r.file;
    if (file === '') throw new CriuTsError('EUSAGE', `${shown}: no namespace file`, { ns: r.ns });
    try {
      statSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const what = file !== r.file && code === 'ENOENT' ? `no process ${r.file}` : `cannot access ${file}`;
      throw new CriuTsError('EUSAGE', `${shown}: ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { ns: r.ns, file }, e);
    }
    // Given twice, the last one is joined, as with CRIU (it enters each in turn).
    const prev = out.findIndex((j) => j.type === r.ns);
    if (prev >= 0) out.splice(prev, 1);
    // A type some kind joins: one of JoinNs's (the kinds' contract).
    out.push({ type: r.ns as JoinNs['type'], file });
  }
  return out;
}
