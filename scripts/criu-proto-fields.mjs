#!/usr/bin/env node
// Lists the field facts (number, rule, type, name, packed) of every message
// in a CRIU source tree's images/*.proto, as JSON on stdout:
//   { "release": "...", "messages": { "creds_entry": { "1": "required uint32 uid", ... } } }
// The output is checked in as test/images/criu-fields.json; test/images/schema-audit.test.ts
// compares our schemas (src/images/schema) with it. Usage:
//   node scripts/criu-proto-fields.mjs CRIU_SRC_DIR RELEASE > test/images/criu-fields.json
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [src, release = 'unknown'] = process.argv.slice(2);
if (!src) {
  process.stderr.write('usage: criu-proto-fields.mjs CRIU_SRC_DIR [RELEASE]\n');
  process.exit(1);
}
const dir = join(src, 'images');
const messages = {};
for (const file of readdirSync(dir).filter((f) => f.endsWith('.proto')).sort()) {
  // Comments out, then walk top-level blocks; nested enums are named parent.enum.
  const text = readFileSync(join(dir, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const stack = [];
  for (const m of text.matchAll(/\b(message|enum)\s+(\w+)\s*\{|\}|\b(required|optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*(\[[^\]]*\])?\s*;/g)) {
    if (m[1]) stack.push({ kind: m[1], name: m[2] });
    else if (m[0] === '}') stack.pop();
    else {
      const top = stack[stack.length - 1];
      if (!top || top.kind !== 'message') continue;
      const packed = /packed\s*=\s*true/.test(m[7] ?? '') ? ' packed' : '';
      (messages[top.name] ??= {})[m[6]] = `${m[3]} ${m[4]} ${m[5]}${packed}`;
    }
  }
}
process.stdout.write(JSON.stringify({ release, source: 'checkpoint-restore/criu images/*.proto', messages }, null, 1) + '\n');
