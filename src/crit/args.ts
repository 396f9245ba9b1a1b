/**
 * crit's command line: decode, encode, show, info, x. Accepts the same
 * option spellings as crit's argparse (-i/--in, -o/--out, --in=X, --pretty,
 * --nopl, --tls-key which we ignore since encrypted images are not supported).
 */
import { CriuTsError } from '../errors.js';

export interface CritArgs {
  cmd: 'decode' | 'encode' | 'show' | 'info' | 'x' | 'help' | 'version';
  in?: string;
  out?: string;
  pretty: boolean;
  nopl: boolean;
  dir?: string;
  what?: string;
}

export const USAGE = `crit-ts {decode,encode,info,x,show} ...
CRIU image tool (TypeScript), output compatible with crit 4.2.

  decode [-i IN] [-o OUT] [--pretty]  image (default stdin) to JSON (default stdout)
  encode [-i IN] [-o OUT]             JSON (default stdin) to image (default stdout)
  show [--nopl] IN                    decode --pretty; --nopl hides entry payloads
  info IN                             image kind and number of entries
  x DIR {ps,fds,mems,rss}             explore a dump directory
  -h, --help                          this text
  --version                           crit version we match
`;

function usage(msg: string): CriuTsError {
  return new CriuTsError('EUSAGE', `${msg} (see crit-ts --help)`);
}

export function parseArgs(argv: readonly string[]): CritArgs {
  const a: CritArgs = { cmd: 'help', pretty: false, nopl: false };
  const rest = [...argv];
  const first = rest.shift();
  if (first === undefined) throw usage('too few arguments');
  if (first === '-h' || first === '--help') return a;
  if (first === '--version') return { ...a, cmd: 'version' };
  if (!['decode', 'encode', 'show', 'info', 'x'].includes(first)) throw usage(`unknown command ${JSON.stringify(first)}`);
  a.cmd = first as CritArgs['cmd'];
  const positional: string[] = [];
  const allowed: Record<string, readonly string[]> = {
    decode: ['in', 'out', 'pretty', 'tls-key'],
    encode: ['in', 'out'],
    show: ['nopl', 'tls-key'],
    info: [],
    x: ['tls-key'],
  };
  const ok = allowed[a.cmd] ?? [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    if (arg === '-h' || arg === '--help') return { ...a, cmd: 'help' };
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    let name: string;
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--')) {
      name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      if (eq > 0) value = arg.slice(eq + 1);
    } else {
      const short = arg.slice(1, 2);
      name = short === 'i' ? 'in' : short === 'o' ? 'out' : arg;
      if (arg.length > 2) value = arg.slice(2);
    }
    if (!ok.includes(name)) throw usage(`${a.cmd}: unknown option ${arg}`);
    if (name === 'pretty' || name === 'nopl') {
      if (value !== undefined) throw usage(`${a.cmd}: ${arg} takes no value`);
      a[name] = true;
      continue;
    }
    if (value === undefined) {
      value = rest[++i];
      if (value === undefined) throw usage(`${a.cmd}: ${arg} needs a value`);
    }
    if (name === 'in') a.in = value;
    else if (name === 'out') a.out = value;
    // --tls-key: accepted for compatibility; encrypted images are not supported.
  }
  if (a.cmd === 'decode' || a.cmd === 'encode') {
    if (positional.length > 0) throw usage(`${a.cmd}: unexpected argument ${positional[0] ?? ''}`);
  } else if (a.cmd === 'show' || a.cmd === 'info') {
    if (positional.length !== 1) throw usage(`${a.cmd}: expected one image file`);
    a.in = positional[0];
  } else if (a.cmd === 'x') {
    if (positional.length !== 2) throw usage('x: expected DIR and one of ps, fds, mems, rss');
    a.dir = positional[0];
    a.what = positional[1];
    if (!['ps', 'fds', 'mems', 'rss'].includes(a.what ?? '')) throw usage(`x: invalid choice ${JSON.stringify(a.what)} (choose from ps, fds, mems, rss)`);
  }
  return a;
}
