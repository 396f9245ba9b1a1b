/**
 * Every public option is read: each field of the option interfaces of
 * src/api/options.ts (CommonOptions, DumpOptions, RestoreOptions,
 * CheckOptions) is used by some other file of src/api, which maps it onto
 * the core's own options. An option that is declared and never read
 * promises the library's user something nothing does (issue 8 found five).
 * A flag of CRIU's that changes nothing here is taken by the CLI and the
 * RPC and said so there; it has no place in the library's options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SRC } from './src-files.js';

const API = join(SRC, 'api');
const INTERFACES = ['CommonOptions', 'DumpOptions', 'RestoreOptions', 'CheckOptions'];

/** The field names of `name`'s body in `text` (top-level fields only). */
function fieldsOf(text: string, name: string): string[] {
  const start = text.indexOf(`export interface ${name} `);
  assert.ok(start >= 0, `interface ${name} in src/api/options.ts`);
  const open = text.indexOf('{', start);
  let depth = 0;
  let end = open;
  for (; end < text.length; end++) {
    if (text[end] === '{') depth++;
    else if (text[end] === '}' && --depth === 0) break;
  }
  const body = text.slice(open + 1, end).replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  // Fields at depth 0 of the body: "name?:" or "name:" at the start of a line.
  const out: string[] = [];
  let d = 0;
  for (const line of body.split('\n')) {
    const m = d === 0 ? /^\s*(?:readonly\s+)?([a-zA-Z][a-zA-Z0-9]*)\??\s*:/.exec(line) : null;
    if (m?.[1]) out.push(m[1]);
    for (const c of line) if (c === '{' || c === '(') d++; else if (c === '}' || c === ')') d--;
  }
  return out;
}

test('every field of the public option interfaces is read by src/api', () => {
  const text = readFileSync(join(API, 'options.ts'), 'utf8');
  const users = readdirSync(API).filter((n) => n.endsWith('.ts') && n !== 'options.ts').map((n) => readFileSync(join(API, n), 'utf8')).join('\n');
  const unread: string[] = [];
  for (const iface of INTERFACES) {
    const fields = fieldsOf(text, iface);
    assert.ok(fields.length > 0, `${iface} has fields`);
    for (const f of fields) {
      // opts.f, o.f, opts?.f, or f in a destructuring pattern ({ f, ... } / { f: x } / { f = d }).
      if (!new RegExp(`\\.${f}\\b|[{,]\\s*${f}\\s*[,}:=]`).test(users)) unread.push(`${iface}.${f}`);
    }
  }
  assert.deepEqual(unread, [], `public options nothing reads (implement or remove them):\n${unread.join('\n')}`);
});
