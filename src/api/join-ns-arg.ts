/**
 * `--join-ns NS:FILE|PID[,EXTRA]` split into its parts, as the command line
 * is parsed: apart from join-ns.ts, which checks the parts against the
 * kinds, so that parsing a command line does not evaluate the kinds'
 * registry and everything it imports (docs/performance.md, "Start-up,
 * session 13"). A malformed argument names every type CRIU knows; which
 * of them criu-ts joins, checkJoinNs says.
 */
import { CriuTsError } from '../errors.js';
import type { JoinNsRequest } from '../kinds/index.js';

/** Every namespace type --join-ns may name, in CRIU's order. */
export const KNOWN: readonly string[] = ['net', 'uts', 'ipc', 'pid', 'mnt', 'user', 'time', 'cgroup'];

/** CRIU's command-line form NS:FILE[,EXTRA]. */
export function parseJoinNsArg(arg: string): JoinNsRequest {
  const colon = arg.indexOf(':');
  if (colon <= 0 || colon === arg.length - 1) {
    throw new CriuTsError('EUSAGE', `--join-ns ${arg}: expected NS:FILE or NS:PID (NS: ${KNOWN.join(', ')})`, { value: arg });
  }
  const rest = arg.slice(colon + 1);
  const comma = rest.indexOf(',');
  const req: JoinNsRequest = { ns: arg.slice(0, colon), file: comma < 0 ? rest : rest.slice(0, comma) };
  if (comma >= 0) req.extra = rest.slice(comma + 1);
  return req;
}
